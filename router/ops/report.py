"""`python -m router report`: spend from the ledger's hourly rollups, grouped, with the budgets'
standing. Windows are read a whole hour at a time, from the hour that holds their start: exact for
calendar windows in time zones a whole number of hours from UTC."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from router.core.budgets import limits, window_span
from router.engine.rollups import BY, Rollup, latency_percentile
from router.policy.schema import Policy

GROUPS = BY  # what a report may group by: the rollups' dimensions
_COLUMNS = (
    "requests",
    "spend_usd",
    "usd_per_1k",
    "prompt",
    "cached",
    "output",
    "reasoning",
    "reasoning_share",
    "cache_hits",
    "saved_usd",
    "rejected",
    "errors",
)
Read = Callable[[float, float, tuple[str, ...]], Rollup]  # the hours from start to end, for some dimensions


def window_start(window: str, policy: Policy, now: float) -> float:
    """Where a report window begins; `all` reaches back as far as rollups are kept."""
    if window == "all":
        return now - policy.ledger.rollups
    return window_span(window, now, ZoneInfo(policy.settings.timezone)).start


def summarize(rollup: Rollup, by: str) -> dict[str, dict]:
    """A row per value of `by` and a TOTAL row (every record has one value of each dimension); the
    latency percentiles (ms, the bound of the histogram bucket that holds them) for routes and models."""
    rows: dict[str, dict] = {}
    total = dict.fromkeys(_COLUMNS, 0.0)
    for name, sums in rollup.rows.get(by, {}).items():
        row: dict = {column: sums.get(column, 0.0) for column in _COLUMNS}
        row["p50_ms"], row["p99_ms"] = latency_percentile(sums, 0.5), latency_percentile(sums, 0.99)
        rows[name] = row
        for column in _COLUMNS:
            total[column] += row[column]
    if rows:
        rows["TOTAL"] = {**total, "p50_ms": None, "p99_ms": None}
    for row in rows.values():
        row["usd_per_1k"] = 1000 * row["spend_usd"] / row["requests"] if row["requests"] else 0.0
        row["reasoning_share"] = row["reasoning"] / row["output"] if row["output"] else 0.0
    return rows


def budget_standing(read: Read, policy: Policy, now: float) -> list[str]:
    """Each budget's spend in its current window, per scope, as its served requests counted it."""
    lines = []
    windows: dict[str, Rollup] = {}
    for budget in policy.budgets:
        if budget.window not in windows:
            windows[budget.window] = read(window_start(budget.window, policy, now), now, ())
        spent = {scope: units for (name, scope), units in windows[budget.window].budgets.items() if name == budget.name}
        lines.append(f"{budget.name} ({budget.per}, {budget.window}, on exceed: {budget.on_exceed})")
        for scope, units in sorted(spent.items()):
            for unit, limit in limits(budget):
                share = units.get(unit, 0.0) / limit
                lines.append(f"  {scope:<40} {units.get(unit, 0.0):>14.6f} of {limit:g} {unit} ({share:.0%})")
        if not spent:
            lines.append("  no spend in this window")
    return lines


def render(rows: dict[str, dict], by: str) -> list[str]:
    header = (
        f"{by:<28} {'requests':>8} {'spend USD':>12} {'USD/1K req':>11} {'prompt':>9} {'cached':>8} "
        f"{'output':>9} {'reasoning':>9} {'reas.%':>6} {'hits':>6} {'saved USD':>10} {'rejected':>8} {'errors':>6}"
        f" {'p50 ms':>7} {'p99 ms':>7}"
    )
    lines = [header]
    for name in sorted(rows, key=lambda n: (n == "TOTAL", -rows[n]["spend_usd"])):
        r = rows[name]
        lines.append(
            f"{name[:28]:<28} {r['requests']:>8.0f} {r['spend_usd']:>12.6f} {r['usd_per_1k']:>11.6f} "
            f"{r['prompt']:>9.0f} {r['cached']:>8.0f} {r['output']:>9.0f} {r['reasoning']:>9.0f} "
            f"{r['reasoning_share']:>6.1%} {r['cache_hits']:>6.0f} {r['saved_usd']:>10.6f} "
            f"{r['rejected']:>8.0f} {r['errors']:>6.0f} {_ms(r['p50_ms']):>7} {_ms(r['p99_ms']):>7}"
        )
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else ">60000" if value == float("inf") else f"{value:g}"


def report(read: Read, policy: Policy, window: str, by: str, now: float | None = None) -> str:
    now = time.time() if now is None else now
    start = window_start(window, policy, now)
    rollup = read(start, now, (by,))
    since = datetime.fromtimestamp(start, ZoneInfo(policy.settings.timezone)).isoformat(timespec="minutes")
    lines = [f"spend by {by}, window {window} (since {since}), {rollup.requests} requests", ""]
    lines += render(summarize(rollup, by), by) if rollup.requests else ["no requests in this window"]
    if policy.budgets:
        lines += ["", "budgets:"] + budget_standing(read, policy, now)
    return "\n".join(lines)
