#!/usr/bin/env python3
"""Proxy throughput with the router plugin versus plain LiteLLM, side by side in one run.

Both proxies run config.yaml's model list with one worker against the same simulator (no added
latency); plain LiteLLM is asked for `deepseek-v4-flash` by name, the plugin for `auto` with a prompt
its policy routes to that same group. Rounds alternate between the sides, and which goes first, so
drift hits all alike. Sides:
  plain LiteLLM     no plugin
  with router       routing only (no temperature given, so the cache is not consulted), a new prompt
                    each time: embedded and classified afresh (plain LiteLLM gets the same prompts)
  cache miss        temperature 0 and a new prompt each time: exact lookup, embedding, semantic
                    lookup, then the upstream call and the store
  cache hit         temperature 0 and a prompt answered before: served by the exact tier
  no metrics        as "with router", on a third proxy whose policy turns its Prometheus metrics
                    off (a proxy started only when --sides names it): what the metrics cost
The plugin's proxy starts on an empty state of its own. Requests that fail (an error status, or a
connection the proxy dropped) are counted apart, not timed.

    .venv/bin/python scripts/bench_proxy.py [--concurrency 50] [--requests 400] [--rounds 3] [--policy FILE]
        [--no-cache] [--sides "plain LiteLLM,with router"]

--no-cache runs the plugin on the policy without its `cache` section (no response cache is installed
in LiteLLM): the plugin's routing, budgets and accounting alone. The cache sides need the cache.

Each ratio is printed pooled (all rounds' requests over all their time) and as the median of the
rounds' own ratios (the two sides of a round run back to back), with their range: on a shared machine
one slow round moves the pooled figure by several points.

Goals: with router / plain at least 0.95; cache miss / plain at least 0.8; cache hit / cache miss at least 3;
with router / no metrics at least 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml
from procs import ROOT, clean_env, start_proxy, start_simulator, stop
from upstreams import simulator_env

KEY = "sk-bench"
NO_METRICS = "no metrics"  # the plugin with the policy's Prometheus metrics off
TICK = os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of a process onto `cpus` (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, PermissionError):
            pass  # a thread that ended meanwhile


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process: steadier than wall-clock rates on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


PROMPT = "Summarize the main trade-offs between renting and buying a home for a young family in a large city."


def plain_config(workdir: Path) -> Path:
    """config.yaml without the plugin: its callback and the callback's settings taken out."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config.pop("callback_settings")
    config["litellm_settings"].pop("callbacks")
    path = workdir / "plain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fresh_state_policy(workdir: Path, source: Path, cache: bool = True, metrics: bool = True) -> Path:
    """The policy at `source` (policies/default.yaml unless --policy says) with its state in
    `workdir`, without its `cache` section unless `cache`, and with its Prometheus metrics off unless
    `metrics`: each run starts empty. On the checkout's own state every run inherited the last one's
    cache, and the cache hit side measured semantic hits on an earlier run's prompts instead of exact ones."""
    policy = yaml.safe_load(source.read_text())
    name = "policy" if metrics else "policy-no-metrics"
    policy["state"] = {"backend": "sqlite", "path": str(workdir / f"{name}.db")}
    if not cache:
        policy.pop("cache", None)  # no response cache: LiteLLM gets none installed
    if not metrics:
        policy["metrics"] = {"enabled": False}
    if "classifier" in policy:  # the copy lives elsewhere: name the original artifact
        policy["classifier"]["path"] = str(source.parent / policy["classifier"]["path"])
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


Started = tuple[subprocess.Popen, str]


@contextmanager
def two_proxies(
    policy: Path = ROOT / "policies" / "default.yaml", cache: bool = True, without_metrics: bool = False
) -> Iterator[tuple[Started, Started, Started | None]]:
    """Plain LiteLLM and the plugin's proxy on config.yaml's model list, one worker each, all on one
    simulator: (process, url) of plain LiteLLM, with the router, and, when `without_metrics`, with
    the router and its metrics off (else None). All stop at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, sim_url = start_simulator(workdir / "simulator.log")
        env = clean_env(LITELLM_MASTER_KEY=KEY, **simulator_env(f"{sim_url}/v1"))
        procs = [sim]
        try:
            plain = start_proxy(plain_config(workdir), env, workdir / "plain.log")
            procs.append(plain[0])
            own = {**env, "ROUTER_POLICY": str(fresh_state_policy(workdir, policy, cache))}
            plugin = start_proxy(ROOT / "config.yaml", own, workdir / "plugin.log")
            procs.append(plugin[0])
            bare = None
            if without_metrics:
                off = {**env, "ROUTER_POLICY": str(fresh_state_policy(workdir, policy, cache, metrics=False))}
                bare = start_proxy(ROOT / "config.yaml", off, workdir / "plugin-no-metrics.log")
                procs.append(bare[0])
            yield plain, plugin, bare
        finally:
            for proc in procs:
                stop(proc)


def body_for(side: str, model: str, n: int) -> dict:
    """Every side but the cache hit asks something new each time: the plugin embeds and classifies
    every request afresh (a repeated prompt would find its embedding memoised)."""
    content = PROMPT if side == "cache hit" else f"{PROMPT} (variant {n} {time.time_ns()})"
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    if side.startswith("cache"):
        body["temperature"] = 0
    return body


async def load(url: str, side: str, model: str, requests: int, concurrency: int) -> tuple[float, list[float], int]:
    """(seconds, latencies of the answered requests, requests that failed: an error status or a
    connection the proxy dropped)."""
    latencies: list[float] = []
    failed: list[int] = []  # one element per failed request
    queue = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {KEY}"}, limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            for n in queue:
                body = body_for(side, model, n)
                start = time.perf_counter()
                try:
                    response = await client.post("/v1/chat/completions", json=body)
                except httpx.TransportError:
                    failed.append(n)
                    continue
                if response.status_code != 200:
                    failed.append(n)
                    continue
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, len(failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--requests", type=int, default=400, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    several_cores = (os.cpu_count() or 1) >= 2
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=several_cores, help="pin to cores")
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "default.yaml", help="the plugin's policy")
    parser.add_argument(
        "--cache", action=argparse.BooleanOptionalAction, default=True, help="keep the policy's response cache"
    )
    parser.add_argument(
        "--sides", default="plain LiteLLM,with router,no metrics,cache miss,cache hit", help="comma-separated"
    )
    args = parser.parse_args()
    if not args.cache and "cache" in args.sides:
        parser.error("--no-cache takes the cache out: choose --sides without the cache sides")
    chosen = args.sides.split(",")
    with two_proxies(args.policy.resolve(), args.cache, NO_METRICS in chosen) as (plain, plugin, bare):
        (plain_proc, plain_url), (plugin_proc, plugin_url) = plain, plugin
        if args.pin:
            # The proxy measured gets a core of its own; the load generator and the simulator share
            # the other. Unpinned, the three compete for two cores and the ratios of one run to the
            # next differed by up to 0.1 on this 2-core machine.
            for pid in (plain_proc.pid, plugin_proc.pid, *((bare[0].pid,) if bare else ())):
                pin(pid, {0})
            pin(os.getpid(), {1})
            for line in subprocess.run(["pgrep", "-f", "simulator.py"], capture_output=True, text=True).stdout.split():
                pin(int(line), {1})
        sides = {
            "plain LiteLLM": (plain_url, "deepseek-v4-flash", plain_proc.pid),
            "with router": (plugin_url, "auto", plugin_proc.pid),
            "cache miss": (plugin_url, "auto", plugin_proc.pid),
            "cache hit": (plugin_url, "auto", plugin_proc.pid),
        }
        if bare is not None:
            sides[NO_METRICS] = (bare[1], "auto", bare[0].pid)
        sides = {name: sides[name] for name in chosen}
        totals = {name: [0.0, [], 0.0, 0, []] for name in sides}
        for name, (url, model, _) in sides.items():  # warm up: imports, connection pools, the cached answer
            asyncio.run(load(url, name, model, 100, args.concurrency))
        for round_no in range(args.rounds):
            order = list(sides.items())[:: 1 if round_no % 2 == 0 else -1]  # ABBA: who goes first alternates
            for name, (url, model, pid) in order:
                cpu_before = cpu_seconds(pid)
                elapsed, latencies, failed = asyncio.run(load(url, name, model, args.requests, args.concurrency))
                totals[name][0] += elapsed
                totals[name][1] += latencies
                totals[name][2] += cpu_seconds(pid) - cpu_before
                totals[name][3] += failed
                totals[name][4].append(len(latencies) / elapsed)
                print(f"round {round_no + 1} {name:<14} {args.requests / elapsed:7.1f} req/s")
        report(totals, args)


def report(totals: dict, args: argparse.Namespace) -> None:
    print(f"\npolicy {args.policy}" + ("" if args.cache else ", its response cache taken out"))
    print(f"concurrency {args.concurrency}, {args.rounds} rounds x {args.requests} requests a side, one worker each")
    # Latencies at full concurrency are mostly queueing; proxy CPU per request is the steadiest figure.
    print(f"{'':<14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'proxy CPU ms/req':>17} {'failed':>7}")
    rates, cpu, rounds = {}, {}, {}
    for name, (elapsed, latencies, cpu_total, failed, per_round) in totals.items():
        rounds[name] = per_round
        latencies.sort()
        rates[name] = len(latencies) / elapsed
        cpu[name] = cpu_total * 1000 / len(latencies)
        p50, p99 = statistics.median(latencies) * 1000, latencies[int(len(latencies) * 0.99)] * 1000
        print(f"{name:<14} {rates[name]:>8.1f} {p50:>8.1f} {p99:>8.1f} {cpu[name]:>17.2f} {failed:>7}")
    pairs = (
        ("with router", "plain LiteLLM"),
        ("with router", NO_METRICS),
        ("cache miss", "plain LiteLLM"),
        ("cache hit", "cache miss"),
        ("cache hit", "plain LiteLLM"),
    )
    for a, b in pairs:
        if a in rates and b in rates:
            # Each round runs the two sides back to back: the median of the rounds' own ratios is
            # not moved by one round the machine slowed down, as the pooled figure is.
            paired = sorted(x / y for x, y in zip(rounds[a], rounds[b]))
            print(
                f"{a} / {b}: throughput {rates[a] / rates[b]:.3f} (median of {len(paired)} rounds "
                f"{statistics.median(paired):.3f}, range {paired[0]:.3f}-{paired[-1]:.3f}), "
                f"proxy CPU per request {cpu[a] / cpu[b]:.3f}"
            )


if __name__ == "__main__":
    main()
