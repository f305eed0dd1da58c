"""`python -m router report --html report.html`: one self-contained page (inline CSS and SVG, no
script, nothing fetched) with the window's charts, from the ledger's hourly rollups and the shift
log: spend over time by route and by model, cost per 1K requests, cache hit ratio and savings,
latency percentiles per route, shifts on a timeline, and each budget's burn-down with when it would
run out at the window's pace."""

from __future__ import annotations

import html
import json
import time
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from router.core.budgets import limits
from router.engine.health import SHIFT_LOG, SHIFT_LOG_LENGTH
from router.engine.rollups import HOUR, Rollup, hourly, latency_percentile
from router.ops.report import window_start
from router.policy.schema import Policy
from router.state import StateStore

W, H, PAD = 760, 220, 44  # a chart's size and its left/bottom margin
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def render(store: StateStore, policy: Policy, window: str, now: float | None = None) -> str:
    now = time.time() if now is None else now
    tz = ZoneInfo(policy.settings.timezone)
    start = window_start(window, policy, now)
    hours = hourly(store, start, now, ("route", "model"))
    size = HOUR if now - start <= 2 * 86400 else 86400  # hourly bars for a day, daily for longer
    bins = list(range(int(start // size), int(now // size) + 1))
    fmt = "%H:%M" if size == HOUR else "%m-%d"
    labels = [datetime.fromtimestamp(b * size, tz).strftime(fmt) for b in bins]
    binned = _binned(hours, bins, size)
    charts = [
        _stacked("Spend by route (USD)", labels, _series(binned, "route", "spend_usd")),
        _stacked("Spend by model (USD)", labels, _series(binned, "model", "spend_usd")),
        _lines("Cost per 1K requests (USD)", labels, {"USD / 1K": _per_1k(binned)}),
        _lines("Cache hit ratio and savings", labels, _cache(binned)),
        _latency("Latency per route (ms, the histogram bucket that holds each percentile)", hours),
        _timeline("Shifts", _shift_spans(store, policy, start, now), start, now, tz),
    ]
    charts += [_burndown(policy, budget, store, now, tz) for budget in policy.budgets]
    total = sum(r.rows["route"][v].get("spend_usd", 0.0) for r in hours.values() for v in r.rows["route"])
    requests = sum(r.requests for r in hours.values())
    since = datetime.fromtimestamp(start, tz).isoformat(timespec="minutes")
    head = f"{requests:,} requests, {total:.4f} USD since {since} ({window} window, {policy.settings.timezone})"
    return _page(f"Router report: {window}", head, charts)


def _binned(hours: dict[int, Rollup], bins: list[int], size: float) -> list[Rollup]:
    merged = {b: Rollup() for b in bins}
    for hour, rollup in hours.items():
        target = merged.get(int(hour * HOUR // size))
        if target is None:
            continue
        for dimension, rows in rollup.rows.items():
            for value, sums in rows.items():
                for column, amount in sums.items():
                    target.rows[dimension][value][column] += amount
    return [merged[b] for b in bins]


def _series(binned: list[Rollup], dimension: str, column: str) -> dict[str, list[float]]:
    names = sorted({v for r in binned for v in r.rows.get(dimension, {})})
    return {
        n: [r.rows[dimension][n].get(column, 0.0) if n in r.rows.get(dimension, {}) else 0.0 for r in binned]
        for n in names
    }


def _total(rollup: Rollup, column: str) -> float:
    return sum(row.get(column, 0.0) for row in rollup.rows.get("route", {}).values())


def _per_1k(binned: list[Rollup]) -> list[float | None]:
    return [1000 * _total(r, "spend_usd") / n if (n := _total(r, "requests")) else None for r in binned]


def _cache(binned: list[Rollup]) -> dict[str, list[float | None]]:
    ratio = [_total(r, "cache_hits") / n if (n := _total(r, "requests")) else None for r in binned]
    saved = [_total(r, "saved_usd") or None for r in binned]
    return {
        "hit ratio": ratio,
        "saved USD (drawn to the ratio's scale: its peak at the ratio's)": _scaled(saved, ratio),
    }


def _scaled(values: list[float | None], like: list[float | None]) -> list[float | None]:
    """`values` drawn on the axis of `like` (their maximum matched)."""
    top, other = max((v for v in values if v), default=0.0), max((v for v in like if v), default=0.0)
    return [None if v is None or not top else v / top * (other or 1.0) for v in values]


# -- charts ----------------------------------------------------------------------------------------


def _rect(x: float, y: float, width: float, height: float, colour: str, tip: str) -> str:
    """A bar, its figure in its tooltip."""
    return (
        f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{colour}">'
        f"<title>{html.escape(tip)}</title></rect>"
    )


def _frame(title: str, body: str, legend: dict[str, str], empty: bool, note: str = "") -> str:
    keys = "".join(f'<span><i style="background:{c}"></i>{html.escape(n)}</span>' for n, c in legend.items())
    inner = '<p class="empty">no data in this window</p>' if empty else f'<svg viewBox="0 0 {W} {H}">{body}</svg>'
    return (
        f'<section class="chart" data-empty="{str(empty).lower()}"><h2>{html.escape(title)}</h2>{inner}'
        f'<div class="legend">{keys}</div>{f"<p>{html.escape(note)}</p>" if note else ""}</section>'
    )


def _axes(labels: list[str], top: float, unit: str = "") -> str:
    parts = [f'<line x1="{PAD}" y1="{H - PAD}" x2="{W}" y2="{H - PAD}" class="axis"/>']
    parts.append(f'<line x1="{PAD}" y1="0" x2="{PAD}" y2="{H - PAD}" class="axis"/>')
    parts.append(f'<text x="{PAD + 4}" y="12" class="tick">{_figure(top)}{unit}</text>')
    step = max(1, len(labels) // 12)
    for i in range(0, len(labels), step):
        x = PAD + (i + 0.5) * (W - PAD) / max(1, len(labels))
        parts.append(f'<text x="{x:.1f}" y="{H - PAD + 14}" class="tick" text-anchor="middle">{labels[i]}</text>')
    return "".join(parts)


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"


def _stacked(title: str, labels: list[str], series: dict[str, list[float]]) -> str:
    sums = [sum(col) for col in zip(*series.values())] if series else []
    top = max(sums, default=0.0)
    colours = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(series)}
    if not top:
        return _frame(title, "", colours, True)
    width = (W - PAD) / len(labels)
    bars = []
    for i in range(len(labels)):
        y = float(H - PAD)
        for name, values in series.items():
            height = values[i] / top * (H - PAD - 4)
            if height > 0:
                y -= height
                x = PAD + i * width + 1
                bars.append(_rect(x, y, max(1.0, width - 2), height, colours[name], f"{name}: {values[i]:.6f}"))
    return _frame(title, _axes(labels, top) + "".join(bars), colours, False)


def _lines(title: str, labels: list[str], series: dict[str, list[float | None]]) -> str:
    top = max((v for values in series.values() for v in values if v is not None), default=0.0)
    colours = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(series)}
    if not top:
        return _frame(title, "", colours, True)
    step = (W - PAD) / len(labels)
    lines = []
    for name, values in series.items():
        points = [
            f"{PAD + (i + 0.5) * step:.1f},{H - PAD - v / top * (H - PAD - 4):.1f}"
            for i, v in enumerate(values)
            if v is not None
        ]
        if points:
            lines.append(f'<polyline class="line" points="{" ".join(points)}" stroke="{colours[name]}" fill="none"/>')
            lines += [
                f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5" fill="{colours[name]}"/>'
                for p in points
            ]
    return _frame(title, _axes(labels, top) + "".join(lines), colours, False)


def _latency(title: str, hours: dict[int, Rollup]) -> str:
    routes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for rollup in hours.values():
        for route, sums in rollup.rows.get("route", {}).items():
            for column, amount in sums.items():
                routes[route][column] += amount
    quantiles = {
        route: [latency_percentile(sums, q) for q in (0.5, 0.95, 0.99)]
        for route, sums in sorted(routes.items())
        if latency_percentile(sums, 0.5) is not None
    }
    colours = dict(zip(("p50", "p95", "p99"), COLOURS))
    finite = [v for values in quantiles.values() for v in values if v is not None and v != float("inf")]
    top = max(finite, default=0.0)
    if not top:
        return _frame(title, "", colours, True)
    group = (W - PAD) / len(quantiles)
    bars = []
    for i, (route, values) in enumerate(quantiles.items()):
        for j, (name, value) in enumerate(zip(colours, values)):
            shown = min(value or 0.0, top)
            height = shown / top * (H - PAD - 4)
            x = PAD + i * group + 4 + j * (group - 8) / 3
            bars.append(
                _rect(x, H - PAD - height, (group - 8) / 3 - 2, height, colours[name], f"{route} {name}: {value:g} ms")
            )
    return _frame(title, _axes(list(quantiles), top, " ms") + "".join(bars), colours, False)


def _shift_spans(
    store: StateStore, policy: Policy, start: float, end: float
) -> dict[str, list[tuple[float, float, str]]]:
    """Each rule's spans away from normal (start, end, phase) within [start, end]."""
    entries = [json.loads(raw) for _, raw in store.read(SHIFT_LOG, None, SHIFT_LOG_LENGTH)]
    spans: dict[str, list[tuple[float, float, str]]] = {rule.key: [] for rule in policy.shifts}
    open_since: dict[str, tuple[float, str]] = {}
    for entry in sorted(entries, key=lambda e: e["t"]):
        rule, t = entry["rule"], entry["t"]
        if rule in open_since:
            began, phase = open_since.pop(rule)
            spans.setdefault(rule, []).append((max(began, start), min(t, end), phase))
        if entry["to"] != "normal":
            open_since[rule] = (t, entry["to"])
    for rule, (began, phase) in open_since.items():
        spans.setdefault(rule, []).append((max(began, start), end, phase))
    return {rule: [s for s in found if s[1] > start] for rule, found in spans.items()}


def _timeline(
    title: str, spans: dict[str, list[tuple[float, float, str]]], start: float, end: float, tz: ZoneInfo
) -> str:
    colours = {"shifted": COLOURS[3], "probing": COLOURS[5]}
    if not spans:
        return _frame(title, "", colours, True)
    row = min(40.0, (H - PAD) / len(spans))
    scale = (W - PAD - 100) / max(1.0, end - start)
    parts = []
    for i, (rule, found) in enumerate(spans.items()):
        y = i * row + 4
        parts.append(
            f'<text x="{PAD + 96}" y="{y + row / 2 + 4:.1f}" class="tick" text-anchor="end">{html.escape(rule)}</text>'
        )
        parts.append(
            f'<rect x="{PAD + 100}" y="{y:.1f}" width="{W - PAD - 100}" height="{row - 8:.1f}" fill="#eef3ee"/>'
        )
        for began, until, phase in found:
            x = PAD + 100 + (began - start) * scale
            label = f"{phase} {datetime.fromtimestamp(began, tz):%m-%d %H:%M}-{datetime.fromtimestamp(until, tz):%H:%M}"
            parts.append(_rect(x, y, max(2.0, (until - began) * scale), row - 8, colours.get(phase, COLOURS[0]), label))
    ends = f"{datetime.fromtimestamp(start, tz):%m-%d %H:%M} to {datetime.fromtimestamp(end, tz):%m-%d %H:%M}"
    shifted = sum(phase == "shifted" for found in spans.values() for _, _, phase in found)
    note = f"{shifted} shifts (then probing until they ended) from {ends}; green: normal"
    return _frame(title, "".join(parts), colours, False, note)


def _burndown(policy: Policy, budget, store: StateStore, now: float, tz: ZoneInfo) -> str:
    """The busiest scope's spend over the budget's current window, its limit, and where the
    window's pace would take it."""
    title = f"Budget {budget.name} ({budget.per}, {budget.window})"
    unit, limit = next(iter(limits(budget)), ("usd", 0.0))
    start = window_start(budget.window, policy, now)
    hours = hourly(store, start, now, ())
    scopes: dict[str, float] = defaultdict(float)
    for rollup in hours.values():
        for (name, scope), units in rollup.budgets.items():
            if name == budget.name:
                scopes[scope] += units.get(unit, 0.0)
    colours = {"spent": COLOURS[0], "limit": COLOURS[3], "at this pace": COLOURS[1]}
    if not scopes or not limit:
        return _frame(title, "", colours, True)
    scope = max(scopes, key=scopes.__getitem__)
    points, spent = [], 0.0
    for hour in range(int(start // HOUR), int(now // HOUR) + 1):  # hours without spend stay flat
        found = hours.get(hour)
        spent += found.budgets.get((budget.name, scope), {}).get(unit, 0.0) if found is not None else 0.0
        points.append(((hour + 1) * HOUR, spent))
    pace = spent / max(1.0, now - start)
    runs_out = start + limit / pace if pace else None
    horizon = max(now, min(runs_out or now, now + (now - start))) if runs_out else now
    top = max(limit, spent, pace * (horizon - start)) * 1.05
    x = lambda t: PAD + (t - start) / max(1.0, horizon - start) * (W - PAD)  # noqa: E731
    y = lambda v: H - PAD - v / top * (H - PAD - 4)  # noqa: E731
    path = " ".join(f"{x(min(t, now)):.1f},{y(v):.1f}" for t, v in [(start, 0.0), *points])
    parts = [
        _axes([f"{datetime.fromtimestamp(t, tz):%m-%d %H:%M}" for t in (start, horizon)], top),
        f'<polyline class="line" points="{path}" stroke="{colours["spent"]}" fill="none" stroke-width="2"/>',
        f'<line x1="{PAD}" y1="{y(limit):.1f}" x2="{W}" y2="{y(limit):.1f}" stroke="{colours["limit"]}" '
        'stroke-dasharray="6 4"/>',
        f'<line x1="{x(now):.1f}" y1="{y(spent):.1f}" x2="{x(horizon):.1f}" y2="{y(pace * (horizon - start)):.1f}" '
        f'stroke="{colours["at this pace"]}" stroke-dasharray="3 3"/>',
    ]
    standing = f"{scope}: {spent:.4g} of {limit:g} {unit}; at this pace it"
    if runs_out is not None and runs_out <= horizon:
        note = f"{standing} runs out {datetime.fromtimestamp(runs_out, tz):%Y-%m-%d %H:%M}"
    else:
        note = f"{standing} lasts the window"
    return _frame(title, "".join(parts), colours, False, note)


def _page(title: str, head: str, charts: list[str]) -> str:
    style = (
        "body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}"
        "h1{font-size:20px}h2{font-size:15px;margin:0 0 6px}"
        ".chart{border:1px solid #ddd;border-radius:6px;padding:12px;margin:0 0 16px;max-width:800px}"
        "svg{width:100%;height:auto}.axis{stroke:#999}.tick{font-size:10px;fill:#555}"
        ".line{stroke-width:2}.legend span{margin-right:12px;font-size:12px}"
        ".legend i{display:inline-block;width:10px;height:10px;margin-right:4px}.empty{color:#999}"
    )
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(head)}</p>"
        f"{''.join(charts)}</body></html>"
    )
