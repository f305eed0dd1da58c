#!/usr/bin/env python3
"""The ledger at scale: 3 million synthetic records (not a proxy run) written as the proxy writes
them (records and their hourly rollups in one store step, raw records to the JSON lines sink), then
`python -m router report --window month` over them, timed, its totals checked against the
generator's own sums, and the store's size after each million.

    .venv/bin/python scripts/bench_ledger.py [--records 3000000] [--backend sqlite|redis] [--keep DIR]

(--backend redis starts a redis-server of its own.)

The records fill last month, evenly; the report is asked for the month that holds its last
second (`--at`), so the window holds them all. Goals: the report in under 2 s with the exact totals; the store's size
bounded (its log keeps the newest million records); the first record still in the sink.
"""

from __future__ import annotations

import argparse
import calendar
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from procs import ROOT, RedisServer, clean_env

from router.engine import rollups
from router.engine.ledger import LEDGER_LOG, MAX_RECORDS
from router.engine.sink import RecordSink, read_records
from router.state import open_store

ROUTES = {"reasoning": "reasoner", "code": "qwen", "creative": "gpt4o", "extraction": "glm", "default": "flash"}
BATCH = 20_000
POLICY = """\
version: 1
models:
  flash: {target: deepseek-v4-flash, context: 128k, price: {input: 0.27, output: 1.10}}
routes:
  - {name: default, use: flash}
budgets:
  - {name: team-monthly, per: team, window: month, limit_usd: 100000}
state: STATE
"""


def synthetic(n: int, start: float, end: float, seed: int = 7):
    rng = random.Random(seed)
    step = (end - start) / n
    for i in range(n):
        route = rng.choice(list(ROUTES))
        team = f"team-{rng.randrange(10)}"
        prompt, completion = rng.randrange(20, 4000), rng.randrange(1, 1500)
        cost = round((prompt * 0.27 + completion * 1.10) / 1e6, 9)
        hit = rng.random() < 0.2
        yield {
            "t": start + i * step,
            "outcome": "ok" if rng.random() > 0.01 else "error",
            "route": route,
            "model": ROUTES[route],
            "target": ROUTES[route],
            "key": f"{rng.randrange(200):064x}",
            "team": team,
            "user": f"user-{rng.randrange(50)}",
            "tags": [],
            "latency_ms": round(rng.lognormvariate(6, 0.6), 1),
            "cost_usd": 0.0 if hit else cost,
            "tokens": {"prompt": prompt, "cached": 0, "completion": completion, "reasoning": 0},
            "cache": "exact" if hit else "miss",
            "saved_usd": cost if hit else 0.0,
            "budgets": [["team-monthly", team, 0.0 if hit else cost, prompt + completion, 0]],
            "n": i,
        }


def size_of(backend: str, store, where: Path) -> str:
    """What the store holds: the log's entries and the rollups' fields (each bounded: the log by
    its cap, the rollups by hours kept times the values seen), and its size."""
    if backend == "redis":
        client = store._client
        fields = sum(client.hlen(k) for k in client.scan_iter(f"{rollups.PREFIX}*", count=1000))
        used = client.info("memory")["used_memory"] / 2**20
        return f"log {client.xlen(LEDGER_LOG):,} entries, rollups {fields:,} fields; redis used_memory {used:.0f} MiB"
    with sqlite3.connect(where / "state.db") as db:
        entries = db.execute("SELECT COUNT(*) FROM log").fetchone()[0]
        fields = db.execute("SELECT COUNT(*) FROM tallies WHERE key LIKE 'ledger:hour:%'").fetchone()[0]
    size = sum(p.stat().st_size for p in where.glob("state.db*")) / 2**20
    return f"log {entries:,} entries, rollups {fields:,} fields; sqlite files {size:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3_000_000)
    parser.add_argument("--backend", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--keep", help="write into this directory and keep it (default: a temporary one)")
    args = parser.parse_args()
    where = Path(args.keep or tempfile.mkdtemp(prefix="bench-ledger-"))
    where.mkdir(parents=True, exist_ok=True)
    server = None
    if args.backend == "redis":
        server = RedisServer(where)  # a real redis-server of its own, on a free port
        server.start()
        store = open_store("redis", url=server.url)
        state = f"{{backend: redis, url: '{server.url}'}}"
    else:
        store = open_store("sqlite", path=str(where / "state.db"))
        state = f"{{backend: sqlite, path: '{where / 'state.db'}'}}"
    sink = RecordSink(where / "ledger", retention=60 * 86400)
    # Last month, whole: its first second to its last, reported `--at` its last day.
    today = time.gmtime()
    end = calendar.timegm((today.tm_year, today.tm_mon, 1, 0, 0, 0))
    last = time.gmtime(end - 1)
    start = calendar.timegm((last.tm_year, last.tm_mon, 1, 0, 0, 0))
    totals = {"requests": 0, "spend": 0.0, "prompt": 0, "output": 0, "hits": 0, "saved": 0.0}
    began, batch = time.perf_counter(), []
    for record in synthetic(args.records, start, end - 1):
        batch.append(record)
        totals["requests"] += 1
        totals["spend"] += record["cost_usd"]
        totals["prompt"] += record["tokens"]["prompt"]
        totals["output"] += record["tokens"]["completion"]
        totals["hits"] += record["cache"] == "exact"
        totals["saved"] += record["saved_usd"]
        if len(batch) == BATCH:
            write(store, sink, batch)
            batch = []
            if totals["requests"] % 1_000_000 == 0:
                took, size = time.perf_counter() - began, size_of(args.backend, store, where)
                print(f"{totals['requests']:>9,} records written in {took:.0f} s; {size}")
    write(store, sink, batch)
    print(f"{totals['requests']:,} records in the month window; the store's log keeps the newest {MAX_RECORDS:,}")

    policy = where / "policy.yaml"
    policy.write_text(POLICY.replace("STATE", state))
    at = time.strftime("%Y-%m-%dT23:59:59", last)
    command = [sys.executable, "-m", "router", "report", "--policy", str(policy), "--window", "month", "--at", at]
    began = time.perf_counter()
    shown = subprocess.run(command, capture_output=True, text=True, env=clean_env(), cwd=ROOT, check=True).stdout
    took = time.perf_counter() - began
    total = next(line.split() for line in shown.splitlines() if line.startswith("TOTAL"))
    reported = {"requests": int(total[1]), "spend": float(total[2]), "prompt": int(total[4]), "output": int(total[6])}
    print(shown)
    print(f"report --window month --at {at}: {took:.2f} s (the whole command: Python start, policy load, rollups read)")
    exact = (
        reported["requests"] == totals["requests"]
        and abs(reported["spend"] - totals["spend"]) < 5e-7
        and reported["prompt"] == totals["prompt"]
        and reported["output"] == totals["output"]
    )
    print(
        f"generator: {totals['requests']:,} requests, {totals['spend']:.6f} USD, {totals['prompt']:,} prompt and "
        f"{totals['output']:,} output tokens: the report's totals {'agree' if exact else 'DIFFER'}"
    )
    kept = store.read(LEDGER_LOG, None, 1)
    oldest_kept = orjson.loads(kept[0][1])["n"] if kept else None
    first = next(read_records(where / "ledger"), None)
    print(f"oldest record in the store's log: #{oldest_kept}; first record in the sink: #{first and first['n']}")
    on_disk = sum(p.stat().st_size for p in (where / "ledger").glob("*")) / 2**20
    print(f"store: {size_of(args.backend, store, where)}; sink: {on_disk:.0f} MiB")
    store.close()
    if server is not None:
        server.stop()
    if not args.keep:
        shutil.rmtree(where)


def write(store, sink: RecordSink, batch: list[dict]) -> None:
    if not batch:
        return
    raws = [orjson.dumps(r) for r in batch]
    sink.write(zip(raws, batch))
    store.append_many(LEDGER_LOG, raws, MAX_RECORDS, rollups.counts(batch), 40 * 86400)


if __name__ == "__main__":
    main()
