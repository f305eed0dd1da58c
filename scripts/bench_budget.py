#!/usr/bin/env python3
"""Budgets under a burst, and what they add to each request.

1. Burst: 400 requests at 28 a second (~50 in flight), against a limit worth ~200 of them, through
   the real BudgetBook on SQLite (calls replayed on a simulated clock, outputs drawn from a size
   distribution, each reservation settled to its real cost when its call ends). Printed per
   `settings.reserve_output`: the share of the limit spent by the requests admitted before the
   first rejection (aim: >= 95 %), and the spend when the burst is over (the overrun).
2. Latency: the reservation before the call plus the settlement after it, p50/p99, on SQLite and
   on a local Redis (started here), for one budget and for three, each request reserved alone and
   drawn on leases of 1 % of the limits (`settings.budget_lease`) (goal: p99 under 1 ms on SQLite,
   under 2 ms on local Redis).

    .venv/bin/python scripts/bench_budget.py [--requests 3000]
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import tempfile
import time
from pathlib import Path

from procs import RedisServer

from router import CompiledPolicy, Identity, parse_policy
from router.core.budgets import Amounts
from router.engine.budget_book import BudgetBook
from router.state import open_store

POLICY = """\
version: 1
settings: {budget_lease: %s}
models:
  m: {target: m, context: 100k, price: {input: 0.27, output: 1.10}}
routes:
  - {name: default, use: m}
budgets:
  - {name: key-day, per: key, window: day, limit_usd: 1000000}
  - {name: team-rolling, per: team, window: rolling 1h, limit_usd: 1000000}
  - {name: global-month, per: global, window: month, limit_tokens: 1000000000000}
"""


def measure(store, budgets: int, requests: int, lease: float) -> tuple[float, float]:
    text = (POLICY if budgets == 3 else POLICY.split("  - {name: team-rolling")[0]) % lease
    compiled = CompiledPolicy(parse_policy(text, env={}))
    book = BudgetBook(store)
    who = Identity(key_hash="bench-key", team="bench-team")
    samples = []
    for i in range(requests + 200):
        start = time.perf_counter()
        admission = book.admit(compiled, "default", "m", who, (), 500, 1000)
        book.settle(admission.reservation, Amounts(0.0003, 800, 0))
        if i >= 200:  # the first ones warm connections and caches
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


BURST_POLICY = """\
version: 1
settings: {reserve_output: %(how)s}
models:
  m: {target: m, context: 100k, price: {input: 1.0, output: 4.0}}
routes:
  - {name: default, use: m}
budgets:
  - {name: burst, per: global, window: day, limit_usd: %(limit)r}
"""
PROMPT = 300
# name: (max_tokens the clients send, a draw of one answer's output tokens)
OUTPUTS = {
    "fixed 24 (the simulator)": (50, lambda rng: 24),
    "lognormal median 200": (1024, lambda rng: min(1024, int(rng.lognormvariate(5.3, 0.6)))),
    "mixed: 80% ~100, 20% 800": (1024, lambda rng: 800 if rng.random() < 0.2 else rng.randint(80, 120)),
}
RATE = 28.0  # arrivals a second; calls last 0.5-3 s, so about 50 are in flight


def burst(how: str, max_tokens: int, draw, path: str, seed: int = 7, requests: int = 400, worth: int = 200):
    """(share of the limit spent by requests admitted before the first rejection, spend / limit at the end)."""
    rng = random.Random(seed)
    cost = lambda output: (PROMPT * 1.0 + output * 4.0) / 1e6  # noqa: E731
    limit = worth * statistics.mean(cost(draw(random.Random(n))) for n in range(2000))
    compiled = CompiledPolicy(parse_policy(BURST_POLICY % {"how": how, "limit": limit}, env={}))
    store = open_store("sqlite", path=path)
    book = BudgetBook(store)
    for _ in range(200):  # earlier traffic on the route
        book.outputs.observe("default", "m", draw(rng))
    who = Identity(key_hash="k")
    running: list = []  # (ends at, n, reservation, output)
    arrival, spent, first = 0.0, 0.0, None
    for n in range(requests):
        arrival += rng.expovariate(RATE)
        while running and running[0][0] <= arrival:
            _, _, reservation, output = heapq.heappop(running)
            book.settle(reservation, Amounts(cost(output), PROMPT + output, 0))
            book.outputs.observe("default", "m", output)
            spent += cost(output)
        admission = book.admit(compiled, "default", "m", who, (), PROMPT, max_tokens)
        output = draw(rng)
        if admission.rejected is not None:
            if first is None:  # what the admitted requests spend, those still running included
                first = (spent + sum(cost(o) for *_, o in running)) / limit
            continue
        heapq.heappush(running, (arrival + rng.uniform(0.5, 3.0), n, admission.reservation, output))
    spent += sum(cost(o) for *_, o in running)
    store.close()
    return (first if first is not None else spent / limit), spent / limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("burst: 400 requests at 28/s, ~50 in flight, a limit worth ~200 of them (SQLite)")
        print(f"{'outputs':<30} {'reserve_output':<14} {'spent at 1st rejection':>23} {'spent at end':>13}")
        for i, (name, (max_tokens, draw)) in enumerate(OUTPUTS.items()):
            for how in ("worst_case", "p95", "p90", "mean"):
                share, end = burst(how, max_tokens, draw, f"{tmp}/burst-{how}-{i}.db")
                print(f"{name:<30} {how:<14} {share:>22.1%} {end:>12.1%}")
        print()
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            print(f"reserve + settle per request, {args.requests} requests (ms)")
            print(f"{'store':<8} {'budgets':>7} {'lease':>6} {'p50':>7} {'p99':>7}")
            for name in ("sqlite", "redis"):
                for budgets in (1, 3):
                    for lease in (0.0, 0.01):
                        store = open_store(name, path=f"{tmp}/state-{budgets}-{lease}.db", url=redis.url)
                        p50, p99 = measure(store, budgets, args.requests, lease)
                        store.close()
                        print(f"{name:<8} {budgets:>7} {lease:>6.0%} {p50:>7.3f} {p99:>7.3f}")
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
