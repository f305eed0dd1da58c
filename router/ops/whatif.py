"""The `replay` and `diff` commands: recorded traffic through one policy, or through two side by side
with a CI gate. Lines that are not requests are named on stderr and skipped; exit codes: 0 done, 1
a `--fail-if` condition held, 2 bad arguments or a policy that cannot be loaded."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TextIO

from router.cache.embedders import EmbedderUnavailable
from router.errors import PolicyError
from router.ops import policy_diff, replay_report
from router.ops.policy_diff import Condition, parse_condition
from router.ops.recorded import Traffic, read_traffic
from router.ops.replay import Outcome, Replay


def add_commands(commands) -> None:
    replay = commands.add_parser(
        "replay", help="re-decide recorded traffic under a policy, offline: routes, models, cost, cache, budgets"
    )
    replay.add_argument("policy")
    _traffic_arguments(replay)
    diff = commands.add_parser("diff", help="replay recorded traffic through two policies and compare; a CI gate")
    diff.add_argument("old", help="the policy in use")
    diff.add_argument("new", help="the candidate policy")
    _traffic_arguments(diff)
    diff.add_argument(
        "--fail-if",
        action="append",
        default=[],
        metavar="CONDITION",
        help="exit 1 when it holds, e.g. 'cost > +5%%', 'moved > 10%%', 'budgets > 0' (repeat for more)",
    )
    diff.add_argument("--sample", type=int, default=10, help="requests that moved to show (default: 10)")


def _traffic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "traffic",
        nargs="+",
        type=Path,
        help="JSON lines files or directories: the router's ledger records, LiteLLM logs, OpenAI request bodies",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--as-recorded",
        action="store_true",
        help="keep the model LiteLLM's and OpenAI's requests named (default: ask the policy's auto model)",
    )
    parser.add_argument(
        "--spacing", type=float, default=1.0, help="seconds between OpenAI requests, which carry no time (default: 1)"
    )
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="default: on a terminal"
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    conditions: list[Condition] = []
    try:
        conditions = [parse_condition(c) for c in getattr(args, "fail_if", [])]
    except ValueError as exc:
        print(f"--fail-if {exc}", file=sys.stderr)
        return 2
    policies = [args.policy] if args.command == "replay" else [args.old, args.new]
    # A replay's shifts, cap overruns and budget warnings are in its figures; as log lines they
    # would bury them.
    logging.getLogger("router").setLevel(logging.ERROR)
    try:
        replays = [Replay(path) for path in policies]
    except (PolicyError, EmbedderUnavailable) as exc:
        print(exc, file=sys.stderr)
        return 2
    auto = replays[-1].compiled.settings.auto_model
    traffic = read_traffic(args.traffic, None if args.as_recorded else auto, args.spacing)
    for problem in traffic.problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not traffic.items:
        print("no requests to replay", file=sys.stderr)
        return 2
    show = sys.stderr.isatty() if args.progress is None else args.progress
    results = [(r, _replayed(r, traffic, show)) for r in replays]
    figures = [
        replay_report.summary(path, traffic, outcomes, r.shifts()) for path, (r, outcomes) in zip(policies, results)
    ]
    if args.command == "replay":
        print(json.dumps(figures[0]) if args.json else replay_report.render(figures[0]), file=out)
        return 0
    compared = policy_diff.diff(figures[0], figures[1], results[0][1], results[1][1], args.sample)
    held = policy_diff.failed(conditions, compared)
    compared["failed"] = held
    print(json.dumps(compared) if args.json else policy_diff.render(compared, held), file=out)
    return 1 if held else 0


def _replayed(replay: Replay, traffic: Traffic, show: bool) -> list[Outcome]:
    began = time.perf_counter()

    def progress(done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - began, 1e-9)
        bar = "#" * int(30 * done / total)
        print(f"\r{replay.policy.path.name}: [{bar:<30}] {done:,}/{total:,} {rate:,.0f} req/s", end="", file=sys.stderr)

    outcomes = replay.run(traffic, progress if show else None)
    if show:
        print(file=sys.stderr)
    return outcomes
