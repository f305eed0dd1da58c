#!/usr/bin/env python3
"""Replay speed: synthetic recorded traffic (not a proxy run) through a policy, offline, as
`python -m router replay` does it: 10,000 and then 100,000 requests, each timed twice, reading the
JSON lines and replaying them, printed as requests per second.

    .venv/bin/python scripts/bench_replay.py [--sizes 10000,100000] [--policy policies/default.yaml]
        [--write FILE --requests N]

The requests are the router's own ledger records with their captured request: prompts from
data/routing/train.jsonl (our own labelled set), a tenth of them reworded by a suffix, from 40 keys
in 8 teams, over one day, a third at temperature 0 (so the cache is consulted) with repeats, a
conversation's later turns now and then, usage and latency by model group. --write only writes
such a file (the README's worked example replays one). Goal: 100,000 requests in under two minutes
on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import tempfile
import time
from pathlib import Path

import orjson

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parent.parent

from router.ops.recorded import read_traffic  # noqa: E402
from router.ops.replay import Replay  # noqa: E402

GROUPS = {  # route -> (model group, mean output tokens, mean reasoning tokens, mean latency s)
    "reasoning": ("deepseek-r1", 300, 900, 6.0),
    "code": ("qwen3-32b", 500, 0, 2.5),
    "creative": ("gpt-4o", 600, 0, 3.0),
    "extraction": ("glm-4-plus", 120, 0, 0.8),
    "long-context": ("deepseek-v4-pro", 400, 0, 4.0),
    "default": ("deepseek-v4-flash", 200, 0, 0.9),
}
DAY = 86_400.0
START = 1_796_000_000.0


def synthetic(count: int, seed: int = 0) -> list[bytes]:
    """`count` ledger records with captured requests, in time order."""
    rng = random.Random(seed)
    labelled = [json.loads(line) for line in (ROOT / "data" / "routing" / "train.jsonl").read_text().splitlines()]
    prompts = [(e["prompt"], e["route"]) for e in labelled if "prompt" in e and e["route"] in GROUPS]
    lines = []
    for n in range(count):
        prompt, route = rng.choice(prompts)
        if rng.random() < 0.1:
            prompt = f"{prompt} (request {rng.randrange(10_000)})"
        messages = [{"role": "user", "content": prompt}]
        if rng.random() < 0.05:  # a later turn
            messages += [
                {"role": "assistant", "content": "Here is a first answer."},
                {"role": "user", "content": "go on"},
            ]
        body: dict = {"model": "auto", "messages": messages}
        if rng.random() < 0.33:
            body["temperature"] = 0
        key = rng.randrange(40)
        group, output, reasoning, latency = GROUPS[route]
        made_reasoning = int(rng.expovariate(1 / reasoning)) if reasoning else 0
        made = int(rng.expovariate(1 / output)) + 1 + made_reasoning
        identity = {"key_hash": f"key-{key}", "team": f"team-{key % 8}", "user": None, "tags": [], "key_alias": None}
        lines.append(
            orjson.dumps(
                {
                    "t": START + n * DAY / count,
                    "outcome": "ok" if rng.random() > 0.01 else "error",
                    "route": route,
                    "target": group,
                    "served": group,
                    "latency_ms": round(rng.expovariate(1 / latency) * 1000, 1),
                    "tokens": {
                        "prompt": 20 + len(prompt) // 4,
                        "cached": 0,
                        "completion": made,
                        "reasoning": made_reasoning,
                    },
                    "cost_usd": None,
                    "cache": "off",
                    "request": {"body": body, "identity": {**identity, "metadata": []}},
                }
            )
        )
    return lines


def timed(policy: Path, path: Path) -> tuple[float, float, int]:
    """(seconds to read, seconds to replay, requests)."""
    began = time.perf_counter()
    traffic = read_traffic([path], "auto")
    read = time.perf_counter() - began
    replay = Replay(str(policy))
    began = time.perf_counter()
    outcomes = replay.run(traffic)
    return read, time.perf_counter() - began, len(outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "default.yaml")
    parser.add_argument("--runs", type=int, default=2, help="runs per size (default: 2)")
    parser.add_argument("--write", type=Path, help="only write synthetic traffic to this file")
    parser.add_argument("--requests", type=int, default=5000, help="requests --write writes (default: 5000)")
    args = parser.parse_args()
    logging.getLogger("router").setLevel(logging.ERROR)  # shifts and budget warnings, as `replay` keeps them quiet
    if args.write:
        args.write.write_bytes(b"\n".join(synthetic(args.requests)) + b"\n")
        print(f"wrote {args.requests:,} recorded requests to {args.write}")
        return
    print(f"policy {args.policy}")
    print(f"{'requests':>9} {'run':>4} {'read s':>8} {'replay s':>9} {'req/s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"traffic-{size}.jsonl"
            path.write_bytes(b"\n".join(synthetic(size)) + b"\n")
            for run in range(1, args.runs + 1):
                read, replayed, count = timed(args.policy, path)
                print(f"{count:>9,} {run:>4} {read:>8.2f} {replayed:>9.2f} {count / (read + replayed):>8,.0f}")


if __name__ == "__main__":
    main()
