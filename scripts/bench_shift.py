#!/usr/bin/env python3
"""Latency-triggered shifts, replayed: a request trace runs on a simulated clock through the same
Health code the proxy uses (windows on a real store, shift rules, reroute), then the cost of
recording and reading the windows is measured in memory and on a local Redis (started here).

    .venv/bin/python scripts/bench_shift.py [--rate 10] [--trace trace.csv]

The default trace: flash answers in 0.8 s (median, lognormal sigma 0.35) for 10 minutes, in 4.5 s
from 10:00 (the breach) and in 0.8 s again from 15:00 (the recovery), at 10 requests/s (Poisson).
The rule is the seed articles': p95 above 3 s over 5 minutes with at least 20 samples shifts 100 %
to pro for 5 minutes. A second scenario hovers at the threshold to count flaps. `--trace` takes a
CSV of `seconds,latency` rows instead: the latency flash has from that second on.

Prints: detection delay (breach to shift), requests sent to the slow model after the breach, time
to return after recovery, transitions; then microseconds per request for recording plus rerouting
(goal: under 50 in memory) and the store round trips per sync tick.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import math
import random
import statistics
import tempfile
import time
from pathlib import Path

from procs import RedisServer

from router import CompiledPolicy, parse_policy, route_body
from router.engine.health import Health
from router.state import open_store

POLICY = """\
version: 1
models:
  flash: {target: flash, context: 128k}
  pro: {target: pro, context: 200k}
routes:
  - {name: default, use: flash, fallbacks: [pro]}
shifts:
  - name: flash-slow
    watch: flash
    when: {p95_latency: 3s, window: 5m, min_samples: 20}
    to: pro
    hold: 5m
    probe: {percent: 10, recover_below: 0.8}
"""
TICK = 0.5  # the runtime's sync interval


def default_trace(breach: float, recover: float) -> list[tuple[float, float]]:
    return [(0.0, 0.8), (breach, 4.5), (recover, 0.8)]


def read_trace(path: Path) -> list[tuple[float, float]]:
    rows = [line.split(",") for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return sorted((float(t), float(latency)) for t, latency in rows)


def replay(
    trace: list[tuple[float, float]], rate: float, duration: float, sigma: float, seed: int = 1, in_flight: bool = True
) -> dict:
    """Run the trace; return when the shift began and ended and where requests went."""
    rng = random.Random(seed)
    compiled = CompiledPolicy(parse_policy(POLICY, env={}))
    clock = [1_700_000_000.0]
    start = clock[0]
    health = Health(open_store("memory"), lambda: compiled, clock=lambda: clock[0], rng=random.Random(seed))
    times = [t for t, _ in trace]
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    events = [(start + rng.expovariate(rate), 0, "arrive"), (start + TICK, 1, "tick")]
    sent, transitions, phase = [], [], "normal"
    while events:
        at, _, kind, *extra = heapq.heappop(events)
        if at - start > duration:
            break
        clock[0] = at
        if kind == "tick":
            health.tick()
            now_phase = health.states["flash-slow"].phase
            if now_phase != phase:
                transitions.append((at - start, phase, now_phase))
                phase = now_phase
            heapq.heappush(events, (at + TICK, 1, "tick"))
        elif kind == "arrive":
            target = health.reroute(route_body(compiled, body)).target
            median = trace[max(0, bisect.bisect_right(times, at - start) - 1)][1] if target == "flash" else 1.0
            latency = median * math.exp(rng.gauss(0, sigma))
            sent.append((at - start, target))
            if in_flight:
                health.begin(str(len(sent)), target)
            heapq.heappush(events, (at + latency, 2, "done", target, latency, str(len(sent))))
            heapq.heappush(events, (at + rng.expovariate(rate), 0, "arrive"))
        else:
            health.end(extra[2])
            health.record(extra[0], None, latency=extra[1])
    return {"sent": sent, "transitions": transitions}


def report_replay(result: dict, breach: float, recover: float) -> None:
    transitions, sent = result["transitions"], result["sent"]
    shift = next((t for t, old, new in transitions if new == "shifted" and t >= breach), None)
    back = next((t for t, old, new in transitions if new == "normal" and t >= recover), None)
    print(f"  breach at {breach:.0f}s, recovery at {recover:.0f}s, {len(sent)} requests")
    if shift is None:
        print("  NO SHIFT after the breach")
    else:
        before_shift = sum(1 for t, target in sent if breach <= t < shift and target == "flash")
        slow_total = sum(1 for t, target in sent if breach <= t < recover and target == "flash")
        print(f"  detection delay: {shift - breach:.1f}s (breach to shift)")
        print(
            f"  requests sent to the slow model after the breach: {before_shift} before the shift, "
            f"{slow_total} in all until the recovery (probes included)"
        )
    if back is not None:
        hold_end = f"; the hold ran until {shift + 300:.0f}s" if shift is not None else ""
        print(f"  traffic returned at {back:.0f}s, {back - recover:.1f}s after the recovery{hold_end}")
    print("  transitions: " + ", ".join(f"{t:.0f}s {old}->{new}" for t, old, new in transitions))


def cost_in_memory(requests: int, shifted: bool) -> tuple[float, float]:
    compiled = CompiledPolicy(parse_policy(POLICY, env={}))
    health = Health(open_store("memory"), lambda: compiled)
    decision = route_body(compiled, {"model": "auto", "messages": [{"role": "user", "content": "hello"}]})
    if shifted:
        for _ in range(30):
            health.record("flash", "deployment-1", latency=5.0)
        health.tick()
        assert health.reroute(decision).target == "pro"
    samples = []
    for i in range(requests):
        began = time.perf_counter()
        health.reroute(decision)
        health.begin(str(i), "flash")
        health.end(str(i))
        health.record("flash", "deployment-1", latency=5.0 if shifted else 0.8, ttft=0.2 if i % 2 else None)
        samples.append(time.perf_counter() - began)
        if i % 500 == 499:
            health.tick()
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


class CountingStore:
    """Counts store calls: each is one round trip (pipelined when it carries many commands)."""

    def __init__(self, store):
        self.store, self.calls = store, 0

    def __getattr__(self, name):
        method = getattr(self.store, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return method(*args, **kwargs)

        return counted


def cost_on_store(store, rate: float, ticks: int) -> tuple[float, float, float]:
    """Per sync tick at `rate` requests/s: round trips and ms (p50, p99), with 5 minutes loaded."""
    compiled = CompiledPolicy(parse_policy(POLICY, env={}))
    counting = CountingStore(store)
    health = Health(counting, lambda: compiled)
    health.tick()
    durations = []
    for _ in range(ticks):
        for i in range(int(rate * TICK)):
            health.record("flash", "deployment-1", latency=0.8 + i / 1000)
        counting.calls = 0
        began = time.perf_counter()
        health.tick()
        durations.append(time.perf_counter() - began)
    durations.sort()
    return counting.calls, statistics.median(durations) * 1e3, durations[int(len(durations) * 0.99)] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10.0, help="requests per second in the replay")
    parser.add_argument("--trace", type=Path, help="CSV of seconds,latency for the watched model")
    parser.add_argument("--requests", type=int, default=100_000, help="requests timed for the per-request cost")
    args = parser.parse_args()

    breach, recover, duration = 600.0, 900.0, 1500.0
    trace = read_trace(args.trace) if args.trace else default_trace(breach, recover)
    for in_flight in (True, False):
        how = "attempts still running count once past the threshold" if in_flight else "finished attempts only"
        print(f"replay: flash p95 rule 3s/5m/20 samples, hold 5m, probe 10%, {args.rate:g} req/s; {how}")
        report_replay(replay(trace, args.rate, duration, sigma=0.35, in_flight=in_flight), breach, recover)
    print("replay: flash hangs from 600s (each answer takes 60s) until 900s")
    for in_flight in (True, False):
        result = replay(
            default_trace(breach, recover)[:1] + [(breach, 60.0), (recover, 0.8)],
            args.rate,
            duration,
            sigma=0.1,
            in_flight=in_flight,
        )
        shift = next((t for t, _, new in result["transitions"] if new == "shifted" and t >= breach), None)
        sent_slow = sum(1 for t, target in result["sent"] if breach <= t < (shift or recover) and target == "flash")
        how = "counting attempts still running" if in_flight else "finished attempts only"
        delay = "no shift" if shift is None else f"detection delay {shift - breach:.1f}s"
        print(f"  {how}: {delay}, {sent_slow} requests sent to the hung model before the shift")
    print(
        "replay: latency hovering at the threshold (median 2.2s, sigma 0.2: p95 about 3.1s) from 600s, an hour, 5 seeds"
    )
    for seed in range(1, 6):
        hover = replay([(0.0, 0.8), (breach, 2.2)], args.rate, 3600.0, sigma=0.2, seed=seed)
        returns = sum(1 for _, _, new in hover["transitions"] if new == "normal")
        shifts = sum(1 for _, _, new in hover["transitions"] if new == "shifted")
        first = next((t for t, _, new in hover["transitions"] if new == "shifted"), 3600.0)
        share = [target for t, target in hover["sent"] if t > first] or ["none"]
        print(
            f"  seed {seed}: first shift {first - breach:.0f}s after the change, {shifts} shifts, {returns} returns "
            f"to normal; flash got {share.count('flash') / len(share):.1%} of the traffic after the first shift"
        )

    for shifted in (False, True):
        p50, p99 = cost_in_memory(args.requests, shifted)
        state = "with the shift active" if shifted else "with nothing degraded"
        print(
            f"per request, in memory (begin + end + record + reroute), {state}: p50 {p50:.1f} us, p99 {p99:.1f} us "
            "(goal: under 50 us)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        for name, store in (("memory", open_store("memory")), ("sqlite", open_store("sqlite", path=f"{tmp}/s.db"))):
            calls, t50, t99 = cost_on_store(store, 50, 200)
            print(
                f"per sync tick (every {TICK}s, 50 req/s), {name}: {calls} store calls, "
                f"p50 {t50:.2f} ms, p99 {t99:.2f} ms"
            )
        server = RedisServer(Path(tmp))
        server.start()
        try:
            store = open_store("redis", url=server.url)
            calls, t50, t99 = cost_on_store(store, 50, 200)
            print(
                f"per sync tick (every {TICK}s, 50 req/s), redis: {calls} round trips (each one pipeline), "
                f"p50 {t50:.2f} ms, p99 {t99:.2f} ms; per request that is {calls / (50 * TICK):.2f} round trips"
            )
            timed = []
            for i in range(2000):
                began = time.perf_counter()
                store.tally({f"win:flash:{i}": {"n": 1, "l130": 1}, f"win:flash#d:{i}": {"n": 1, "l130": 1}}, 300)
                timed.append(time.perf_counter() - began)
            timed.sort()
            print(
                f"recording one request straight to redis instead (one pipelined round trip): "
                f"p50 {timed[1000] * 1e6:.0f} us, p99 {timed[1980] * 1e6:.0f} us"
            )
            store.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
