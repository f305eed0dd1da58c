#!/usr/bin/env python3
"""The plugin's own CPU per request inside a real proxy, part by part, beside the proxy's whole CPU.

The proxy (config.yaml, one worker, on the simulator) starts with scripts/hook_timer on its
PYTHONPATH, which times, in the CPU time of the thread that runs them, every hook LiteLLM calls on
the plugin, the body guard's checks and the plugin's background threads (garbage collections that
fall inside are counted apart, for the whole process). The load is bench_proxy's "with router" side
(a new prompt each time, no temperature: routed, budgeted and accounted, not cached).

Inside the proxy the plugin's code runs on caches LiteLLM's own work has just emptied: the same
functions cost about two to three times what a loop over them in one process measures.

    .venv/bin/python scripts/bench_hooks.py [--requests 400] [--rounds 3] [--concurrency 50] [--policy FILE]
        [--no-cache]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
from pathlib import Path

from bench_proxy import KEY, cpu_seconds, fresh_state_policy, load, pin
from procs import ROOT, clean_env, start_proxy, start_simulator, stop
from upstreams import simulator_env

TIMER = Path(__file__).resolve().parent / "hook_timer"
PLUGIN = ("hook ", "body guard", "background")  # the parts that are the plugin's own work


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "default.yaml")
    parser.add_argument(
        "--cache", action=argparse.BooleanOptionalAction, default=True, help="keep the policy's response cache"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        times = workdir / "hook-times.json"
        sim, sim_url = start_simulator(workdir / "simulator.log")
        procs = [sim]
        try:
            env = clean_env(
                LITELLM_MASTER_KEY=KEY,
                PYTHONPATH=str(TIMER),
                ROUTER_HOOK_TIMES=str(times),
                ROUTER_POLICY=str(fresh_state_policy(workdir, args.policy.resolve(), args.cache)),
                **simulator_env(f"{sim_url}/v1"),
            )
            proc, url = start_proxy(ROOT / "config.yaml", env, workdir / "proxy.log")
            procs.append(proc)
            if (os.cpu_count() or 1) >= 2:  # as bench_proxy: the proxy on a core of its own
                pin(proc.pid, {0})
                pin(os.getpid(), {1})
                pin(sim.pid, {1})
            asyncio.run(load(url, "with router", "auto", 200, args.concurrency))  # warm up
            before, cpu_before = snapshot(proc.pid, times), cpu_seconds(proc.pid)
            answered = failed = 0
            for round_no in range(args.rounds):
                elapsed, latencies, lost = asyncio.run(
                    load(url, "with router", "auto", args.requests, args.concurrency)
                )
                answered, failed = answered + len(latencies), failed + lost
                print(f"round {round_no + 1}: {len(latencies) / elapsed:.1f} req/s")
            cpu = (cpu_seconds(proc.pid) - cpu_before) * 1e6
            after = snapshot(proc.pid, times)
        finally:
            for started in reversed(procs):
                stop(started)
    report(before, after, cpu, answered + failed, failed, args)


def report(before: dict, after: dict, cpu_us: float, requests: int, failed: int, args) -> None:
    print(f"\npolicy {args.policy}" + ("" if args.cache else ", its response cache taken out"))
    print(f"{requests} requests ({failed} failed), concurrency {args.concurrency}, one worker")
    print(f"{'':<52} {'calls/req':>9} {'CPU us/req':>11}")
    plugin = 0.0
    for part in sorted(after):
        calls = (after[part][0] - before.get(part, [0, 0])[0]) / requests
        spent = (after[part][1] - before.get(part, [0, 0])[1]) / 1e3 / requests
        if part.startswith(PLUGIN):
            plugin += spent
        print(f"{part:<52} {calls:>9.2f} {spent:>11.1f}")
    print(f"\nthe plugin's own work: {plugin:.0f} us CPU a request")
    share = plugin * requests / cpu_us
    print(f"the proxy's whole CPU: {cpu_us / requests:.0f} us a request; the plugin's share {share:.1%}")


if __name__ == "__main__":
    main()
