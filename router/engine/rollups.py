"""Hourly rollups of the ledger: per hour, each route's, model's, key's, team's and user's requests,
tokens by kind, spend, cache hits and savings, rejections and errors, and each budget's spend per
scope. They are written in the same step as the records they sum (StateStore.append_many's
`counts`), so a report over a month reads two counter groups an hour however many records it held,
and totals stay exact when the capped log of raw records has let the oldest go.

A group per hour and dimension, `ledger:hour:<hours since the epoch>:<dimension>` (a report by
route reads no key's figures); a field per (value, column) joined by \\x1f, and for budgets per
(budget, scope, unit). Only amounts that are not zero are written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from router.state.protocol import StateStore

HOUR = 3600
PREFIX = "ledger:hour:"
BY = ("route", "model", "key", "team", "user")
# Latency histogram per route and model: the count of requests whose latency is at most each bound
# (milliseconds) and above the one before; `latency_percentile` reads a percentile off it.
LATENCY_BOUNDS_MS = (100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, float("inf"))
_TIMED = ("route", "model")
BUDGET = "budget"  # the group of budget fields: name \x1f scope \x1f unit
_SEP = "\x1f"


def hour_of(t: float) -> int:
    return int(t // HOUR)


def columns(record: dict) -> dict[str, float]:
    """What one record adds to each column (zeros left out)."""
    tokens = record.get("tokens") or {}
    outcome = record.get("outcome")
    latency = record.get("latency_ms")
    found = {
        "requests": 1.0,
        "spend_usd": record.get("cost_usd") or 0.0,
        "prompt": tokens.get("prompt", 0),
        "cached": tokens.get("cached", 0),
        "output": tokens.get("completion", 0),
        "reasoning": tokens.get("reasoning", 0),
        "cache_hits": float(record.get("cache", "off") not in ("off", "miss", None)),
        "saved_usd": record.get("saved_usd") or 0.0,
        "rejected": float(outcome == "budget_rejected"),
        "errors": float(outcome == "error"),
        "latency_ms": latency or 0.0,
        "timed": float(latency is not None),
    }
    return {name: float(amount) for name, amount in found.items() if amount}


def counts(records: Iterable[dict]) -> dict[str, dict[str, float]]:
    """The rollup fields a batch of records adds, per group (an hour of one dimension). Summed per
    (hour, dimension, value) first: a batch holds many records of a few routes, models and keys,
    and the field names are made once per value, not once per record."""
    cells: dict[tuple[int, str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in records:
        hour = hour_of(record.get("t", 0.0))
        added = columns(record)
        latency = record.get("latency_ms")
        bucket = None if latency is None else f"lat{next(b for b in LATENCY_BOUNDS_MS if latency <= b):g}"
        for dimension in BY:
            cell = cells[hour, dimension, _clean(record.get(dimension))]
            for column, amount in added.items():
                cell[column] += amount
            if bucket is not None and dimension in _TIMED:
                cell[bucket] += 1.0
        for name, scope, usd, tokens, reasoning in record.get("budgets") or ():
            cell = cells[hour, BUDGET, f"{_clean(name)}{_SEP}{_clean(scope)}"]
            for unit, amount in (("usd", usd), ("tokens", tokens), ("reasoning", reasoning)):
                if amount:
                    cell[unit] += amount
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for (hour, dimension, value), cell in cells.items():
        group = groups[f"{PREFIX}{hour}:{dimension}"]
        for column, amount in cell.items():
            group[f"{value}{_SEP}{column}"] = amount
    return {key: fields for key, fields in groups.items() if fields}


def _clean(value: object) -> str:
    return str(value).replace(_SEP, " ")


@dataclass
class Rollup:
    """The sums of the hours read: `rows[dimension][value][column]`, `budgets[(name, scope)][unit]`."""

    rows: dict[str, dict[str, dict[str, float]]] = field(default_factory=lambda: defaultdict(_row))
    budgets: dict[tuple[str, str], dict[str, float]] = field(default_factory=lambda: defaultdict(_zeroes))

    @property
    def requests(self) -> int:
        """Every record has one value of each dimension: any dimension read sums to them all."""
        rows = next(iter(self.rows.values()), {})
        return int(sum(row.get("requests", 0.0) for row in rows.values()))


def _row() -> dict[str, dict[str, float]]:
    return defaultdict(_zeroes)


def _zeroes() -> dict[str, float]:
    return defaultdict(float)


def read(store: StateStore, start: float, end: float, by: Iterable[str] = BY) -> Rollup:
    """The sums of every hour that holds a moment in [start, end], for the dimensions `by` and the
    budgets."""
    rollup = Rollup()
    for _, dimension, group in _groups(store, start, end, by):
        _add(rollup, dimension, group)
    return rollup


def hourly(store: StateStore, start: float, end: float, by: Iterable[str] = BY) -> dict[int, Rollup]:
    """Each hour's sums (hours since the epoch -> Rollup), for charts over time; hours with nothing left out."""
    hours: dict[int, Rollup] = defaultdict(Rollup)
    for hour, dimension, group in _groups(store, start, end, by):
        if group:
            _add(hours[hour], dimension, group)
    return dict(hours)


def _groups(store: StateStore, start: float, end: float, by: Iterable[str], batch: int = 168):
    """(hour, dimension, fields) of every group, read a week of hours at a time."""
    wanted = (*by, BUDGET)
    hours = range(hour_of(start), hour_of(end) + 1)
    for first in range(0, len(hours), batch):
        keys = [(h, d) for h in hours[first : first + batch] for d in wanted]
        groups = store.tallies([f"{PREFIX}{h}:{d}" for h, d in keys])
        for (hour, dimension), group in zip(keys, groups):
            yield hour, dimension, group


def _add(rollup: Rollup, dimension: str, group: dict[str, float]) -> None:
    if dimension == BUDGET:
        for name, amount in group.items():
            budget, scope, unit = name.split(_SEP)
            rollup.budgets[(budget, scope)][unit] += amount
        return
    rows = rollup.rows[dimension]
    for name, amount in group.items():
        value, column = name.rsplit(_SEP, 1)
        rows[value][column] += amount


def latency_percentile(row: dict[str, float], q: float) -> float | None:
    """The latency (ms) under which a share `q` of a route's or model's timed requests fell: the
    bound of the histogram bucket that holds it (an upper estimate); None without timed requests."""
    counts = [row.get(f"lat{bound:g}", 0.0) for bound in LATENCY_BOUNDS_MS]
    total = sum(counts)
    if not total:
        return None
    seen = 0.0
    for bound, count in zip(LATENCY_BOUNDS_MS, counts):
        seen += count
        if seen >= q * total:
            return bound
    return LATENCY_BOUNDS_MS[-1]
