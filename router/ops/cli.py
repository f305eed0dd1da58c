"""Command line: `python -m router validate POLICY [--config config.yaml]`,
`python -m router explain POLICY [--json] [PROMPT]`,
`python -m router report [--policy POLICY] [--window day] [--by route] [--at DATE]`,
`python -m router status [--policy POLICY] [--window 5m] [--json]`,
`python -m router alerts POLICY` (Prometheus rules), `python -m router dashboard POLICY` (Grafana),
`python -m router eval POLICY LABELLED.jsonl [--json]`,
`python -m router learn LABELLED.jsonl [--out classifier.npz]`,
`python -m router replay POLICY TRAFFIC... [--json]` (router.ops.whatif),
`python -m router diff OLD NEW TRAFFIC... [--fail-if "cost > +5%"]` and
`python -m router embedder build [--if-missing]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import TextIO
from zoneinfo import ZoneInfo

import yaml

from router.cache.embedders import EmbedderUnavailable, Shared, StaticEmbedder, local_embedder
from router.core.decide import CompiledPolicy, Decision, route_body
from router.core.request import Identity
from router.engine import rollups
from router.errors import PolicyError, RequestRejected
from router.ops import evaluate, observability, status, whatif
from router.ops.report import GROUPS, report
from router.policy.fields import duration
from router.policy.loader import load_policy, read_model_groups
from router.policy.schema import Policy
from router.policy.traffic import parse_window
from router.settings import RouterSettings
from router.state import StoreUnavailable, open_store


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    out = stdout or sys.stdout
    if args.command == "embedder":
        return _build_embedder(args.if_missing, out)
    if args.command == "learn":
        return _learn(args, out)
    if args.command in ("replay", "diff"):
        return whatif.run(args, out)
    args.policy = args.policy or RouterSettings().policy
    try:
        groups = read_model_groups(args.config) if getattr(args, "config", None) else None
        compiled = _compiled(load_policy(args.policy, groups=groups), args.command in ("explain", "eval"))
    except (PolicyError, EmbedderUnavailable) as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.command == "validate":
        policy = compiled.policy
        print(f"ok: {args.policy}: {len(policy.routes)} routes, {len(policy.models)} models", file=out)
        return 0
    if args.command == "report":
        try:
            window = args.window if args.window == "all" else str(parse_window(args.window))
        except ValueError as exc:
            print(f"--window: {exc}", file=sys.stderr)
            return 2
        at = _moment(args.at, compiled.policy)
        if isinstance(at, str):
            print(f"--at: {at}", file=sys.stderr)
            return 2
        if args.html:
            return _with_store(
                compiled.policy, out, lambda store: _write_html(store, compiled.policy, window, at, args.html)
            )
        return _with_store(
            compiled.policy,
            out,
            lambda store: report(partial(rollups.read, store), compiled.policy, window, args.by, at),
        )
    if args.command == "alerts":
        print(yaml.safe_dump(observability.alert_rules(compiled.policy), sort_keys=False, width=200), file=out, end="")
        return 0
    if args.command == "dashboard":
        print(json.dumps(observability.dashboard(compiled.policy, args.title), indent=2), file=out)
        return 0
    if args.command == "status":
        seconds = duration(args.window)
        if not isinstance(seconds, float):
            print(f"--window: not a duration: {args.window!r} (e.g. 60s, 5m, 1h)", file=sys.stderr)
            return 2
        return _with_store(
            compiled.policy, out, lambda store: status.render(status.snapshot(store, compiled, seconds), args.json)
        )
    if args.command == "eval":
        return _evaluate(compiled, args, out)
    return _explain(compiled, args, stdin or sys.stdin, out)


def _evaluate(compiled: CompiledPolicy, args: argparse.Namespace, out: TextIO) -> int:
    """Exit 2 when a line was not an example (they are skipped and named), 0 otherwise."""
    try:
        examples, problems = evaluate.read_labelled(args.labelled, compiled.settings.auto_model)
    except OSError as exc:
        print(f"cannot read {args.labelled}: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    outcomes = evaluate.score(compiled, examples, lambda body: route_body(compiled, body), args.output_tokens)
    figures = evaluate.summary(outcomes)
    print(json.dumps(figures) if args.json else evaluate.render(figures), file=out)
    return 2 if problems else 0


def _compiled(policy: Policy, decides: bool) -> CompiledPolicy:
    """A command that decides compares routes' examples with the policy's embedder, when it runs
    here (a model group of the proxy does not: those routes then never match, as the note says)."""
    if not decides or not policy.routes_by_meaning:
        return CompiledPolicy(policy)
    embedder = local_embedder(policy.settings.embedder)
    if embedder is None:
        print(
            f"note: routes by meaning are skipped: their embedder '{policy.settings.embedder}' is a model group "
            "of the proxy, which this command does not call",
            file=sys.stderr,
        )
    return CompiledPolicy(policy, Shared(embedder) if embedder is not None else None)


def _learn(args: argparse.Namespace, out: TextIO) -> int:
    from router.ops.learn import learn
    from router.policy import artifact

    try:
        examples, problems = evaluate.read_labelled(args.labelled, "auto")
        embedder = local_embedder(args.embedder)
    except (OSError, EmbedderUnavailable) as exc:
        print(exc, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    if embedder is None:
        print(f"--embedder: '{args.embedder}' does not run here: local or minilm", file=sys.stderr)
        return 2
    try:
        model, report = learn(examples, Shared(embedder), args.embedder, args.holdout, args.seed)
    except ValueError as exc:
        print(f"cannot learn from {args.labelled}: {exc}", file=sys.stderr)
        return 2
    artifact.save(args.out, model)
    print(report.render(), file=out)
    print(f"wrote {args.out}: routes {', '.join(model.labels)}; embedder {model.embedder}", file=out)
    return 0


def _build_embedder(if_missing: bool, out: TextIO) -> int:
    from router.cache.embedders import build_static, static_model_dir

    path = static_model_dir()
    if if_missing:
        try:
            StaticEmbedder(path)
            return 0
        except EmbedderUnavailable:
            pass  # missing or damaged: build it
    print(f"distilling the static embedding model into {path} (about 20 s) ...", file=out)
    build_static(path)
    StaticEmbedder(path)  # loads, or raises naming what is wrong
    print(f"ok: {path}", file=out)
    return 0


def _write_html(store, policy: Policy, window: str, at: float | None, path: str) -> str:
    from router.ops import html_report

    page = html_report.render(store, policy, window, at)
    with open(path, "w", encoding="utf-8") as out:
        out.write(page)
    return f"wrote {path} ({len(page) // 1024} KB, self-contained)"


def _moment(text: str | None, policy: Policy) -> float | str | None:
    """`--at`: an ISO time (in the policy's time zone unless it gives its own), or a date (its last
    moment), as epoch seconds; None for now; the reason as text when it is not one."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return f"not an ISO date or time: {text!r} (e.g. 2026-11-30 or 2026-11-30T23:59)"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(policy.settings.timezone))
    if len(text) == 10:  # a date: as of its end, so that its day (or its month) is whole
        return (moment + timedelta(days=1)).timestamp() - 0.001
    return moment.timestamp()


def _with_store(policy, out: TextIO, show) -> int:
    """Print what `show(store)` makes of the policy's state store."""
    state = policy.state
    store = open_store(state.backend, state.path, state.url or "")
    try:
        print(show(store), file=out)
    except StoreUnavailable as exc:
        print(f"the state store is unreachable: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    """Options may come before or after a command's positional arguments (`explain POLICY --json
    "prompt"`): argparse matches an optional positional too early unless arguments are parsed
    intermixed, which it supports per subcommand only."""
    parser, commands = _parser()
    if not argv or argv[0] not in commands:
        return parser.parse_args(argv)  # help, or the error naming the commands
    args = commands[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="python -m router", description="Check a routing policy and see its decisions."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a policy file; exit 1 listing every problem")
    validate.add_argument("policy")
    validate.add_argument(
        "--config", help="a LiteLLM proxy config: every model's target must be one of its model groups"
    )
    explain = commands.add_parser(
        "explain", help="print the decision for PROMPT, or for each JSON chat request body read from stdin (one a line)"
    )
    explain.add_argument("policy")
    explain.add_argument("prompt", nargs="?", help="a user message; omit it to read request bodies from stdin")
    explain.add_argument("--json", action="store_true", help="print one JSON object a line")
    sender = explain.add_argument_group("as whom (the identity the proxy would authenticate)")
    sender.add_argument("--key", help="the key's alias (or SHA-256 hash)")
    sender.add_argument("--team")
    sender.add_argument("--user")
    sender.add_argument("--tag", action="append", default=[], help="a tag of the key (repeat for more)")
    sender.add_argument(
        "--key-metadata", action="append", default=[], metavar="FIELD=VALUE", help="a field of the key's metadata"
    )
    sender.add_argument(
        "--metadata",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field of the request's metadata (counts when settings.trusted_metadata names it)",
    )
    sender.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME: VALUE",
        help="a request header; x-litellm-tags (comma-separated) are request tags, as LiteLLM reads them",
    )
    summary = commands.add_parser("report", help="spend, tokens, cache savings and budgets from the ledger")
    summary.add_argument("--policy", help="the policy whose state store and budgets to read (default: ROUTER_POLICY)")
    summary.add_argument("--window", default="day", help="hour, day, month, 'rolling <duration>' or all (default: day)")
    summary.add_argument("--by", choices=GROUPS, default="route", help="group by (default: route)")
    summary.add_argument("--at", help="the window that holds this moment (ISO date or time; default: now)")
    summary.add_argument("--html", metavar="FILE", help="write a self-contained page with charts instead of the table")
    rules = commands.add_parser("alerts", help="Prometheus alerting rules for the policy's shifts, budgets and slos")
    rules.add_argument("policy")
    board = commands.add_parser("dashboard", help="a Grafana dashboard (JSON) over the router's metrics")
    board.add_argument("policy")
    board.add_argument("--title", default="LiteLLM router")
    health = commands.add_parser("status", help="each model's latency and error figures, active shifts and holds")
    health.add_argument(
        "--policy", help="the policy whose state store and shift rules to read (default: ROUTER_POLICY)"
    )
    health.add_argument("--window", default="5m", help="how far back the figures reach (default: 5m)")
    health.add_argument("--json", action="store_true", help="print JSON")
    scoring = commands.add_parser("eval", help="score a policy's routing on labelled prompts (JSON lines)")
    scoring.add_argument("policy")
    scoring.add_argument("labelled", help="one {prompt or messages, intent, fits and/or route} a line")
    scoring.add_argument("--json", action="store_true", help="print one JSON object")
    scoring.add_argument("--output-tokens", type=int, default=400, help="output a request is priced at (default: 400)")
    fit = commands.add_parser("learn", help="fit the route classifier a policy's `classifier` names")
    fit.add_argument("labelled", help="one {prompt or messages, route} a line")
    fit.add_argument("--out", default="classifier.npz", help="where to write it (default: classifier.npz)")
    fit.add_argument("--embedder", default="local", help="the policy's settings.embedder: local (default) or minilm")
    fit.add_argument("--holdout", type=float, default=0.2, help="share held out for the figures (default: 0.2)")
    fit.add_argument("--seed", type=int, default=0)
    whatif.add_commands(commands)
    embedder = commands.add_parser("embedder", help="build the semantic cache's static embedding model")
    embedder.add_argument("action", choices=["build"])
    embedder.add_argument("--if-missing", action="store_true", help="only when it is missing or unreadable")
    return parser, commands.choices


def _explain(compiled: CompiledPolicy, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    auto = compiled.settings.auto_model
    bodies: Iterable[tuple[int, object]]
    if args.prompt is not None:
        bodies = [(1, {"model": auto, "messages": [{"role": "user", "content": args.prompt}]})]
    else:
        bodies = ((n, line) for n, line in enumerate(stdin, 1) if line.strip())
    status = 0
    for number, body in bodies:
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError as exc:
                print(f"line {number}: not JSON: {exc}", file=sys.stderr)
                status = 2
                continue
        if isinstance(body, dict):
            body.setdefault("model", auto)
        print(_render(_decide(compiled, body, args), args.json), file=out)
    return status


def _decide(compiled: CompiledPolicy, body: object, args: argparse.Namespace) -> Decision | RequestRejected:
    try:
        return route_body(compiled, body, _sender(compiled, body, args))
    except RequestRejected as exc:
        return exc


def _sender(compiled: CompiledPolicy, body: object, args: argparse.Namespace) -> Identity:
    """The identity `explain`'s options describe, put together as the proxy would."""
    sent = body.get("metadata") if isinstance(body, dict) else None
    request = {**(sent if isinstance(sent, dict) else {}), **_pairs(args.metadata, "--metadata")}
    for header in args.header:
        name, _, value = header.partition(":")
        if name.strip().lower() == "x-litellm-tags":
            tags = request.get("tags")
            request["tags"] = [
                *(tags if isinstance(tags, list) else []),
                *filter(None, map(str.strip, value.split(","))),
            ]
    key = {"key_alias": args.key, "team": args.team, "user": args.user}
    if args.key and len(args.key) == 64:
        key["key_hash"] = args.key
    own = {**_pairs(args.key_metadata, "--key-metadata"), "tags": args.tag}
    settings = compiled.settings
    return Identity.of(key, own, request, settings.trust_request_tags, settings.trusted_metadata)


def _pairs(items: list[str], option: str) -> dict[str, list[str]]:
    """FIELD=VALUE options as metadata: a field given twice has both values."""
    found: dict[str, list[str]] = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep or not field:
            raise SystemExit(f"{option} takes FIELD=VALUE, not {item!r}")
        found.setdefault(field, []).append(value)
    return found


def _render(result: Decision | RequestRejected, as_json: bool) -> str:
    if isinstance(result, RequestRejected):
        if as_json:
            return json.dumps({"rejected": result.status, "message": result.message})
        return f"rejected {result.status}: {result.message}"
    if as_json:
        return json.dumps(result.as_dict())
    chain = " -> ".join((result.target, *result.fallbacks))
    return f"route={result.route} model={result.model} targets={chain} tokens~{result.prompt_tokens} | {result.reason}"
