#!/usr/bin/env python3
"""The plugin's own CPU per request inside a real proxy, part by part, beside the proxy's whole CPU;
with --against REF, this checkout and the commit REF side by side in one run.

The proxy (config.yaml, one worker, on the simulator) starts with scripts/hook_timer on its
PYTHONPATH, which times, in the CPU time of the thread that runs them, every hook LiteLLM calls on
the plugin, the body guard's checks and the plugin's background threads (garbage collections that
fall inside are counted apart, for the whole process). The load is one of bench_proxy's sides:
"with router" (the default: a new prompt each time, no temperature: routed, budgeted and accounted,
not cached), "cache miss" (a new prompt at temperature 0: looked up and stored) or "cache hit".

Inside the proxy the plugin's code runs on caches LiteLLM's own work has just emptied: the same
functions cost about two to three times what a loop over them in one process measures. This
machine's speed also moves by up to 1.5x within minutes, and the plugin's CPU with it: compare
figures of one run only. --against REF checks REF out in a temporary git worktree, starts its proxy
beside this one (its own config.yaml and policies/default.yaml, this checkout's built embedder), both
on one core, and loads them in alternate rounds; the figure to compare is each side's share of its
own proxy's CPU, round by round, which the machine's speed moves far less than microseconds.
`--against HEAD` (the same code on both sides) shows the method's own spread: 0.973 in one run here.

    .venv/bin/python scripts/bench_hooks.py [--requests 400] [--rounds 3] [--concurrency 50] [--policy FILE]
        [--no-cache] [--against REF] [--side "with router"|"cache miss"|"cache hit"]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_proxy import KEY, cpu_seconds, fresh_state_policy, load, pin
from procs import ROOT, clean_env, start_proxy, start_simulator, stop
from upstreams import simulator_env

TIMER = Path(__file__).resolve().parent / "hook_timer"
PLUGIN = ("hook ", "cache backend", "body guard", "background")  # the parts that are the plugin's own work
SIDES = ("with router", "cache miss", "cache hit")  # bench_proxy's loads of the plugin


def snapshot(pid: int, path: Path) -> dict[str, list[int]]:
    """The proxy's totals so far (it writes them on SIGUSR1)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while not path.exists() or path.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise RuntimeError("the proxy did not write its hook times: is scripts/hook_timer on its path?")
        time.sleep(0.05)
    return json.loads(path.read_text())


@dataclass
class Side:
    """One proxy under measurement and what its rounds added up to."""

    name: str
    pid: int
    url: str
    times: Path
    requests: int = 0
    failed: int = 0
    cpu_us: float = 0.0
    parts: dict[str, list[float]] = field(default_factory=dict)  # part -> [calls, microseconds]
    shares: list[float] = field(default_factory=list)  # the plugin's share of the proxy's CPU, each round

    def round(self, side: str, requests: int, concurrency: int) -> str:
        before, cpu_before = snapshot(self.pid, self.times), cpu_seconds(self.pid)
        elapsed, latencies, lost = asyncio.run(load(self.url, side, "auto", requests, concurrency))
        cpu = (cpu_seconds(self.pid) - cpu_before) * 1e6
        after = snapshot(self.pid, self.times)
        plugin = 0.0
        for part, (calls, nanoseconds) in after.items():
            was = before.get(part, [0, 0])
            added = self.parts.setdefault(part, [0.0, 0.0])
            added[0] += calls - was[0]
            added[1] += (nanoseconds - was[1]) / 1e3
            if part.startswith(PLUGIN):
                plugin += (nanoseconds - was[1]) / 1e3
        self.requests, self.failed, self.cpu_us = self.requests + requests, self.failed + lost, self.cpu_us + cpu
        self.shares.append(plugin / cpu)
        return f"{self.name}: {len(latencies) / elapsed:.1f} req/s, the plugin {plugin / requests:.0f} us a request"

    def per_request(self, part: str) -> tuple[float, float]:
        calls, spent = self.parts.get(part, [0.0, 0.0])
        return calls / self.requests, spent / self.requests

    def plugin_us(self) -> float:
        return sum(spent for part, (_, spent) in self.parts.items() if part.startswith(PLUGIN)) / self.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests a round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (of each side, with --against)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "default.yaml")
    parser.add_argument(
        "--cache", action=argparse.BooleanOptionalAction, default=True, help="keep the policy's response cache"
    )
    parser.add_argument("--against", metavar="REF", help="a commit to measure beside this checkout")
    parser.add_argument("--side", choices=SIDES, default=SIDES[0], help="which of bench_proxy's loads")
    args = parser.parse_args()
    if args.side != SIDES[0] and not args.cache:
        parser.error("--no-cache takes the cache out: the cache sides need it")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, sim_url = start_simulator(workdir / "simulator.log")
        procs = [sim]
        try:
            checkouts = [("this checkout", ROOT, args.policy.resolve())]
            if args.against:
                other = worktree(args.against, workdir / "against")
                checkouts.append((args.against, other, other / args.policy.resolve().relative_to(ROOT)))
            sides = []
            for name, checkout, policy in checkouts:
                side, proc = start(name, checkout, policy, workdir / f"side-{len(sides)}", sim_url, args.cache)
                procs.append(proc)
                sides.append(side)
            if (os.cpu_count() or 1) >= 2:  # as bench_proxy: the proxies on a core of their own
                for side in sides:
                    pin(side.pid, {0})
                pin(os.getpid(), {1})
                pin(sim.pid, {1})
            for side in sides:  # warm up (and, for cache hits, the answer that serves them)
                asyncio.run(load(side.url, args.side, "auto", 200, args.concurrency))
            for round_no in range(args.rounds):
                order = sides if round_no % 2 == 0 else sides[::-1]  # neither side always goes first
                done = [s.round(args.side, args.requests, args.concurrency) for s in order]
                print(f"round {round_no + 1}: " + "; ".join(done))
        finally:
            for started in reversed(procs):
                stop(started)
            if args.against:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)
    report(sides, args)


def worktree(ref: str, where: Path) -> Path:
    """REF checked out, with its C module built when it has one (as scripts/setup builds it here)."""
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref], check=True)
    if (where / "setup.py").exists():
        subprocess.run(
            [sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=where, check=True, capture_output=True
        )
    return where


def start(name: str, checkout: Path, policy: Path, workdir: Path, sim_url: str, cache: bool):
    """A proxy running the plugin of `checkout` (its config.yaml and the given policy), timed."""
    workdir.mkdir()
    times = workdir / "hook-times.json"
    path = str(TIMER) if checkout == ROOT else f"{checkout}{os.pathsep}{TIMER}"
    env = clean_env(
        LITELLM_MASTER_KEY=KEY,
        PYTHONPATH=path,  # ahead of the editable install: the other checkout's `router` package
        ROUTER_DATA_DIR=str(ROOT / "data"),  # the embedder built here (a worktree has none)
        ROUTER_HOOK_TIMES=str(times),
        ROUTER_POLICY=str(fresh_state_policy(workdir, policy, cache)),
        **simulator_env(f"{sim_url}/v1"),
    )
    proc, url = start_proxy(checkout / "config.yaml", env, workdir / "proxy.log")
    return Side(name, proc.pid, url, times), proc


def report(sides: list[Side], args) -> None:
    print(f"\npolicy {args.policy}" + ("" if args.cache else ", its response cache taken out") + f"; load: {args.side}")
    first = sides[0]
    print(f"{first.requests} requests a side ({sum(s.failed for s in sides)} failed), concurrency {args.concurrency}")
    print(f"{'CPU us a request':<52}" + "".join(f" {s.name[:14]:>14}" for s in sides))
    for part in sorted({p for s in sides for p in s.parts}):
        print(f"{part:<52}" + "".join(f" {s.per_request(part)[1]:>14.1f}" for s in sides))
    for side in sides:
        shares = side.shares
        print(
            f"\n{side.name}: the plugin's own work {side.plugin_us():.0f} us CPU a request of the proxy's "
            f"{side.cpu_us / side.requests:.0f}; its share by round: median {statistics.median(shares):.2%} "
            f"({min(shares):.2%}-{max(shares):.2%})"
        )
    if len(sides) == 2:
        ratio = statistics.median(sides[0].shares) / statistics.median(sides[1].shares)
        print(f"\nthe plugin's share, {sides[0].name} / {sides[1].name}: {ratio:.3f}")


if __name__ == "__main__":
    main()
