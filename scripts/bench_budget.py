#!/usr/bin/env python3
"""Added latency of budgets per request: the reservation before the call plus the settlement after
it, p50/p99, on SQLite and on a local Redis (started here), for one budget and for three.

    .venv/bin/python scripts/bench_budget.py [--requests 3000]

Goal: p99 under 1 ms on SQLite, under 2 ms on local Redis.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from procs import RedisServer
from router import CompiledPolicy, Identity, parse_policy
from router.budgets import BudgetBook
from router.core.budgets import Amounts
from router.state import open_store

POLICY = """\
version: 1
models:
  m: {target: m, context: 100k, price: {input: 0.27, output: 1.10}}
routes:
  - {name: default, use: m}
budgets:
  - {name: key-day, per: key, window: day, limit_usd: 1000000}
  - {name: team-rolling, per: team, window: rolling 1h, limit_usd: 1000000}
  - {name: global-month, per: global, window: month, limit_tokens: 1000000000000}
"""


def measure(store, budgets: int, requests: int) -> tuple[float, float]:
    text = POLICY if budgets == 3 else POLICY.split("  - {name: team-rolling")[0]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            print(f"reserve + settle per request, {args.requests} requests (ms)")
            print(f"{'store':<8} {'budgets':>7} {'p50':>7} {'p99':>7}")
            for name in ("sqlite", "redis"):
                for budgets in (1, 3):
                    store = open_store(name, path=f"{tmp}/state-{budgets}.db", url=redis.url)
                    p50, p99 = measure(store, budgets, args.requests)
                    store.close()
                    print(f"{name:<8} {budgets:>7} {p50:>7.3f} {p99:>7.3f}")
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
