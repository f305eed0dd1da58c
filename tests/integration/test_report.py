"""`python -m router report` over a ledger in a real SQLite store."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from router import PolicyError, parse_policy
from router.engine import rollups
from router.engine.ledger import Ledger, records
from router.engine.sink import RecordSink, read_records
from router.ops.cli import main
from router.ops.report import summarize
from router.state import open_store

POLICY = """\
version: 1
models:
  m: {target: m, context: 8k, price: {input: 1, output: 2}}
routes:
  - {name: default, use: m}
budgets:
  - {name: per-team, per: team, window: day, limit_usd: 1}
state: {backend: sqlite, path: STATE}
"""


def record(team: str, cost: float, reasoning: int = 0, **extra) -> dict:
    """A record as accounting writes it: the budget it counted for among its fields."""
    return {
        "t": time.time(),
        "outcome": "ok",
        "route": "default",
        "model": "m",
        "team": team,
        "key": "k",
        "cost_usd": cost,
        "tokens": {"prompt": 100, "cached": 10, "completion": 50, "reasoning": reasoning},
        "cache": "miss",
        "latency_ms": 120.0,
        "budgets": [["per-team", team, cost, 150, reasoning]],
        **extra,
    }


def rollup_of(*written: dict):
    store = open_store("memory")
    ledger = Ledger(store)
    for r in written:
        ledger.write(r)
    return rollups.read(store, time.time() - 3600, time.time())


def test_summary_by_team():
    rows = summarize(
        rollup_of(record("a", 0.25, 20), record("a", 0.25), record("b", 0.1, cache="exact", saved_usd=0.1)), "team"
    )
    assert rows["a"]["requests"] == 2 and rows["a"]["spend_usd"] == 0.5 and rows["a"]["usd_per_1k"] == 250
    assert rows["a"]["reasoning_share"] == 0.2 and rows["b"]["cache_hits"] == 1 and rows["b"]["saved_usd"] == 0.1
    assert rows["TOTAL"]["requests"] == 3


def test_the_report_command(tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("STATE", str(tmp_path / "state.db")))
    ledger = Ledger(open_store("sqlite", path=str(tmp_path / "state.db")))
    rejected = {**record("b", 0), "outcome": "budget_rejected", "budgets": []}
    for r in (record("a", 0.4), record("a", 0.4), record("b", 0.05), rejected):
        ledger.write(r)
    old = {**record("a", 9.0), "t": time.time() - 3 * 86400}  # before today: outside the day window
    ledger.write(old)
    assert main(["report", "--policy", str(policy), "--by", "team"]) == 0
    out = capsys.readouterr().out
    assert "spend by team, window day" in out and "4 requests" in out
    table = out.split("budgets:")[0]
    lines = {
        line.split()[0]: line.split() for line in table.splitlines() if line and line.split()[0] in ("a", "b", "TOTAL")
    }
    assert lines["a"][1:3] == ["2", "0.800000"] and lines["TOTAL"][1] == "4" and lines["b"][11:13] == ["1", "0"]
    assert lines["a"][13:] == ["-", "-"]  # latency percentiles are kept per route and model
    assert "per-team (team, day, on exceed: reject)" in out and "0.800000 of 1 usd (80%)" in out
    assert main(["report", "--policy", str(policy), "--window", "all"]) == 0
    by_route = capsys.readouterr().out
    assert "5 requests" in by_route
    default = next(line.split() for line in by_route.splitlines() if line.startswith("default "))
    assert default[13:] == ["250", "250"]  # 120 ms: the bucket up to 250 ms
    assert main(["report", "--policy", str(policy), "--at", (date.today() - timedelta(days=3)).isoformat()]) == 0
    assert "1 requests" in capsys.readouterr().out  # the day of the old record
    assert main(["report", "--policy", str(policy), "--at", "yesterday"]) == 2
    assert main(["report", "--policy", str(policy), "--window", "fortnight"]) == 2


def test_totals_stay_whole_when_the_store_keeps_only_the_newest_records(tmp_path):
    """The store's log is capped; the rollups written with the records keep every total, and the
    raw-record sink keeps the first record after many more."""
    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    sink = RecordSink(tmp_path / "ledger", retention=30 * 86400)
    ledger = Ledger(store, write_behind=True, sink=sink, max_records=100)
    first = {**record("a", 0.001), "id": "first"}
    ledger.write(first)
    for n in range(2999):
        ledger.write(record("ab"[n % 2], 0.001, reasoning=n % 3))
        if n % 400 == 0:
            ledger.flush()
    ledger.flush()
    kept = list(records(store))
    assert 100 <= len(kept) < 300 and kept[0].get("id") != "first"  # the store let the oldest go
    rows = summarize(rollups.read(store, time.time() - 3600, time.time(), ("team",)), "team")
    assert rows["TOTAL"]["requests"] == 3000 and abs(rows["TOTAL"]["spend_usd"] - 3.0) < 1e-9
    assert rows["a"]["requests"] == 1501 and rows["TOTAL"]["reasoning"] == sum(n % 3 for n in range(2999))
    on_disk = list(read_records(tmp_path / "ledger"))
    assert len(on_disk) == 3000 and on_disk[0]["id"] == "first"


def test_rollups_must_outlast_a_month(tmp_path):
    short = POLICY.replace("STATE", str(tmp_path / "state.db")) + "ledger: {rollups: 7d}\n"
    with pytest.raises(PolicyError) as error:
        parse_policy(short, env={})
    assert "ledger.rollups" in str(error.value)


def test_records_the_sink_cannot_take_wait_for_the_next_flush(tmp_path, caplog):
    blocked = tmp_path / "ledger"
    blocked.write_text("a file where the directory should be")
    ledger = Ledger(open_store("memory"), write_behind=True, sink=RecordSink(blocked, retention=86400))
    for n in range(3):
        ledger.write({**record("a", 0.01), "n": n})
    ledger.flush()
    assert "cannot write raw records" in caplog.text and list(read_records(tmp_path)) == []
    blocked.unlink()
    ledger.write({**record("a", 0.01), "n": 3})
    ledger.flush()
    assert [r["n"] for r in read_records(blocked)] == [0, 1, 2, 3]  # none lost, in order
