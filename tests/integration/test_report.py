"""`python -m router report` over a ledger in a real SQLite store."""

from __future__ import annotations

import time

from router.engine.ledger import Ledger
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
        **extra,
    }


def test_summary_by_team():
    rows = summarize([record("a", 0.25, 20), record("a", 0.25), record("b", 0.1, cache="exact", saved_usd=0.1)], "team")
    assert rows["a"]["requests"] == 2 and rows["a"]["spend_usd"] == 0.5 and rows["a"]["usd_per_1k"] == 250
    assert rows["a"]["reasoning_share"] == 0.2 and rows["b"]["cache_hits"] == 1 and rows["b"]["saved_usd"] == 0.1
    assert rows["TOTAL"]["requests"] == 3


def test_the_report_command(tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("STATE", str(tmp_path / "state.db")))
    ledger = Ledger(open_store("sqlite", path=str(tmp_path / "state.db")))
    for r in (record("a", 0.4), record("a", 0.4), record("b", 0.05), {**record("b", 0), "outcome": "budget_rejected"}):
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
    assert lines["a"][1:3] == ["2", "0.800000"] and lines["TOTAL"][1] == "4"
    assert "per-team (team, day, on exceed: reject)" in out and "0.800000 of 1 usd (80%)" in out
    assert main(["report", "--policy", str(policy), "--window", "all"]) == 0
    assert "5 requests" in capsys.readouterr().out
    assert main(["report", "--policy", str(policy), "--window", "fortnight"]) == 2
