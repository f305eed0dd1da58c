#!/usr/bin/env python3
"""What oversized requests cost everyone else: the latency of small chat requests, alone and while
another client keeps sending huge ones, on plain LiteLLM and with the router, side by side in one run.

The huge request is 10,000 one-word messages (settings.limits.max_messages is 2,000 by default):
the router refuses it with 413 as it arrives, plain LiteLLM works through it and calls the model.
Both proxies run config.yaml's model list with one worker against the same simulator.

    .venv/bin/python scripts/bench_abuse.py [--requests 40] [--flooders 2] [--messages 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from bench_proxy import KEY, two_proxies

SMALL = "What is the capital of France?"


async def small_latencies(client: httpx.AsyncClient, model: str, requests: int) -> list[float]:
    latencies = []
    for _ in range(requests):
        start = time.perf_counter()
        response = await client.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": SMALL}]}
        )
        response.raise_for_status()
        latencies.append(time.perf_counter() - start)
    return latencies


async def measure(url: str, model: str, args: argparse.Namespace) -> dict:
    huge = {"model": model, "messages": [{"role": "user", "content": "hi"}] * args.messages}
    seen: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as client:
        await small_latencies(client, model, 10)  # warm up
        alone = await small_latencies(client, model, args.requests)
        done = asyncio.Event()

        async def flood() -> None:
            while not done.is_set():
                status = (await client.post("/v1/chat/completions", json=huge)).status_code
                seen[status] = seen.get(status, 0) + 1

        flooders = [asyncio.create_task(flood()) for _ in range(args.flooders)]
        await asyncio.sleep(0.5)
        loaded = await small_latencies(client, model, args.requests)
        done.set()
        await asyncio.gather(*flooders)
    return {"alone": alone, "loaded": loaded, "huge": seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="small requests per measurement")
    parser.add_argument("--flooders", type=int, default=2, help="clients sending huge requests at once")
    parser.add_argument("--messages", type=int, default=10_000, help="messages in a huge request")
    args = parser.parse_args()
    with two_proxies() as ((_, plain_url), (_, plugin_url), _):
        results = {
            "plain LiteLLM": asyncio.run(measure(plain_url, "deepseek-v4-flash", args)),
            "with router": asyncio.run(measure(plugin_url, "auto", args)),
        }
    print(
        f"small requests one at a time, {args.requests} per measurement; {args.flooders} clients sending "
        f"{args.messages}-message requests meanwhile"
    )
    print(
        f"{'':<14} {'p50 alone':>10} {'p50 flooded':>12} {'p95 flooded':>12} {'ratio p50':>10}  huge requests answered"
    )
    for name, r in results.items():
        alone, loaded = statistics.median(r["alone"]) * 1000, statistics.median(r["loaded"]) * 1000
        p95 = sorted(r["loaded"])[int(len(r["loaded"]) * 0.95)] * 1000
        print(f"{name:<14} {alone:>8.1f}ms {loaded:>10.1f}ms {p95:>10.1f}ms {loaded / alone:>10.2f}  {r['huge']}")


if __name__ == "__main__":
    main()
