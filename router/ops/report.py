"""`python -m router report`: spend from the ledger, grouped, with the budgets' standing."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from router.core.budgets import applies, limits, window_span
from router.policy.schema import Policy

GROUPS = ("route", "model", "key", "team", "user")
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


def window_start(window: str, policy: Policy, now: float) -> float:
    if window == "all":
        return 0.0
    return window_span(window, now, ZoneInfo(policy.settings.timezone)).start


def summarize(records: Iterable[dict], by: str) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(_COLUMNS, 0.0))
    for record in records:
        for name in (str(record.get(by)), "TOTAL"):
            _add(rows[name], record)
    for row in rows.values():
        row["usd_per_1k"] = 1000 * row["spend_usd"] / row["requests"] if row["requests"] else 0.0
        row["reasoning_share"] = row["reasoning"] / row["output"] if row["output"] else 0.0
    return dict(rows)


def _add(row: dict[str, float], record: dict) -> None:
    row["requests"] += 1
    outcome = record.get("outcome")
    row["rejected"] += outcome == "budget_rejected"
    row["errors"] += outcome == "error"
    row["spend_usd"] += record.get("cost_usd") or 0.0
    tokens = record.get("tokens") or {}
    row["prompt"] += tokens.get("prompt", 0)
    row["cached"] += tokens.get("cached", 0)
    row["output"] += tokens.get("completion", 0)
    row["reasoning"] += tokens.get("reasoning", 0)
    row["cache_hits"] += record.get("cache", "off") not in ("off", "miss", None)
    row["saved_usd"] += record.get("saved_usd") or 0.0


def budget_standing(records: list[dict], policy: Policy, now: float) -> list[str]:
    """Each budget's spend in its current window, per scope, from the ledger."""
    lines = []
    for budget in policy.budgets:
        start = window_start(budget.window, policy, now)
        used: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for record in records:
            if (
                record["t"] < start
                or record.get("outcome") != "ok"
                or not applies(budget, record["route"], record["model"])
            ):
                continue
            for scope in _record_scopes(budget.per, record):
                tokens = record.get("tokens") or {}
                used[scope]["usd"] += record.get("cost_usd") or 0.0
                used[scope]["tokens"] += tokens.get("prompt", 0) + tokens.get("completion", 0)
                used[scope]["reasoning"] += tokens.get("reasoning", 0)
        lines.append(f"{budget.name} ({budget.per}, {budget.window}, on exceed: {budget.on_exceed})")
        for scope, spent in sorted(used.items()):
            for unit, limit in limits(budget):
                share = spent[unit] / limit
                lines.append(f"  {scope:<40} {spent[unit]:>14.6f} of {limit:g} {unit} ({share:.0%})")
        if not used:
            lines.append("  no spend in this window")
    return lines


def _record_scopes(per: str, record: dict) -> list[str]:
    if per == "global":
        return ["all"]
    if per == "tag":
        return list(record.get("tags") or [])
    value = record.get(per)
    return [str(value)] if value else []


def render(rows: dict[str, dict[str, float]], by: str) -> list[str]:
    header = (
        f"{by:<28} {'requests':>8} {'spend USD':>12} {'USD/1K req':>11} {'prompt':>9} {'cached':>8} "
        f"{'output':>9} {'reasoning':>9} {'reas.%':>6} {'hits':>6} {'saved USD':>10} {'rejected':>8} {'errors':>6}"
    )
    lines = [header]
    for name in sorted(rows, key=lambda n: (n == "TOTAL", -rows[n]["spend_usd"])):
        r = rows[name]
        lines.append(
            f"{name[:28]:<28} {r['requests']:>8.0f} {r['spend_usd']:>12.6f} {r['usd_per_1k']:>11.6f} "
            f"{r['prompt']:>9.0f} {r['cached']:>8.0f} {r['output']:>9.0f} {r['reasoning']:>9.0f} "
            f"{r['reasoning_share']:>6.1%} {r['cache_hits']:>6.0f} {r['saved_usd']:>10.6f} "
            f"{r['rejected']:>8.0f} {r['errors']:>6.0f}"
        )
    return lines


def report(records: list[dict], policy: Policy, window: str, by: str, now: float | None = None) -> str:
    now = time.time() if now is None else now
    start = window_start(window, policy, now)
    chosen = [r for r in records if r.get("t", 0) >= start]
    since = (
        "all time"
        if window == "all"
        else datetime.fromtimestamp(start, ZoneInfo(policy.settings.timezone)).isoformat(timespec="minutes")
    )
    lines = [f"spend by {by}, window {window} (since {since}), {len(chosen)} requests", ""]
    lines += render(summarize(chosen, by), by) if chosen else ["no requests in this window"]
    if policy.budgets:
        lines += ["", "budgets:"] + budget_standing(records, policy, now)
    return "\n".join(lines)
