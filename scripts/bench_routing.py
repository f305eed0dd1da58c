#!/usr/bin/env python3
"""Decision latency of the default policy: request checks, token estimate, keyword pass, regex,
code detection and the context guard, as the proxy hook runs them (`route_body`).

    .venv/bin/python scripts/bench_routing.py [--policy policies/default.yaml] [--iterations 3000]

Prints p50/p99 in microseconds for 100-, 1K- and 8K-token prompts, for a prompt that falls through
every route to the default (the slowest case: every condition is evaluated) and one that matches the
first route near its end. Goal: p99 under 100 microseconds at 1K tokens.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from pathlib import Path

from router import CompiledPolicy, estimate_tokens, load_policy, route_body

ROOT = Path(__file__).resolve().parent.parent
PROSE = (
    "the quarterly report shows revenue growth across regions while costs remained stable and the team "
    "expects further gains next year although supply constraints could slow deliveries in some markets "
    "customers asked about pricing options support hours and the roadmap for integrations with partner tools"
).split()


def prompt_of(tokens: int, tail: str, seed: int) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    while estimate_tokens(" ".join(words)) < tokens:
        words.append(rng.choice(PROSE))
        if rng.random() < 0.08:
            words[-1] += "."
    return " ".join(words) + tail


def measure(compiled: CompiledPolicy, body: dict, iterations: int) -> tuple[float, float, str]:
    route = route_body(compiled, body).route
    for _ in range(200):
        route_body(compiled, body)
    samples = []
    gc.disable()
    try:
        for _ in range(iterations):
            start = time.perf_counter_ns()
            route_body(compiled, body)
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000, route


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--iterations", type=int, default=3000)
    args = parser.parse_args()
    compiled = CompiledPolicy(load_policy(args.policy))
    print(f"policy {args.policy}: {len(compiled.routes)} routes")
    print(f"{'prompt':>8} {'case':<26} {'route':<14} {'p50 us':>8} {'p99 us':>8}")
    for tokens in (100, 1_000, 8_000):
        for case, tail in (
            ("falls through to default", " what do you think?"),
            ("matches 'step by step'", " explain it step by step"),
        ):
            body = {
                "model": "auto",
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant for a finance team."},
                    {"role": "user", "content": prompt_of(tokens, tail, tokens)},
                ],
            }
            p50, p99, route = measure(compiled, body, args.iterations)
            print(f"{tokens:>8} {case:<26} {route:<14} {p50:>8.1f} {p99:>8.1f}")


if __name__ == "__main__":
    main()
