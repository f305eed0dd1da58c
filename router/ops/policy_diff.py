"""Two replays of the same traffic side by side (`python -m router diff OLD NEW TRAFFIC`): what moves
(requests per route and model group before and after, a sample of the prompts that changed route),
the cost and cache deltas, the budgets newly hit; and the CI gate, `--fail-if` conditions over them:

    cost > +5%        the total cost rose by more than 5 % (without %: by more than that many USD)
    moved > 10%       more than 10 % of the requests changed route or model group (without %: a count)
    cache_hits < -2%  the cache's hits fell by more than 2 % (without %: by that many)
    rejected > 0      more requests refused by a budget than before (with %: a share of all requests)
    budgets > 0       budgets the new policy hits that the old one did not
"""

from __future__ import annotations

import math
import operator
import re
from collections import Counter
from dataclasses import dataclass

from router.ops.replay import Outcome
from router.ops.replay_report import prompt_of

METRICS = ("cost", "moved", "cache_hits", "rejected", "budgets")
_CONDITION = re.compile(r"^\s*(\w+)\s*(>=|<=|>|<)\s*([+-]?\d+(?:\.\d+)?)\s*(%?)\s*$")
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class Condition:
    text: str
    metric: str
    op: str
    value: float
    percent: bool


def parse_condition(text: str) -> Condition:
    """Raises ValueError naming what is wrong."""
    found = _CONDITION.match(text)
    if found is None:
        raise ValueError(f"{text!r}: write <metric> <op> <number>[%], e.g. 'cost > +5%' or 'moved > 10%'")
    metric, op, value, percent = found.groups()
    if metric not in METRICS:
        raise ValueError(f"{text!r}: unknown metric {metric!r} (metrics: {', '.join(METRICS)})")
    if metric == "budgets" and percent:
        raise ValueError(f"{text!r}: budgets is a count of budgets, not a share")
    return Condition(text, metric, op, float(value), bool(percent))


def diff(old: dict, new: dict, old_outcomes: list[Outcome], new_outcomes: list[Outcome], sample: int = 10) -> dict:
    """`old`, `new`: the replays' summaries (router.ops.replay_report.summary) of the same traffic."""
    n = len(new_outcomes)
    moves: Counter[str] = Counter()
    rerouted: list[dict] = []  # changed route: shown first
    remodelled: list[dict] = []  # same route, another model group
    for before, after in zip(old_outcomes, new_outcomes):
        if (before.route, before.target) == (after.route, after.target):
            continue
        moves[f"{before.route}/{before.target} -> {after.route}/{after.target}"] += 1
        kind = rerouted if before.route != after.route else remodelled
        if len(kind) < sample:
            kind.append(
                {
                    "at": after.item.where,
                    "prompt": prompt_of(after),
                    "from": f"{before.route}/{before.target}",
                    "to": f"{after.route}/{after.target}",
                }
            )
    old_hits = {b["budget"] for b in old["budgets"]}
    return {
        "requests": n,
        "moved": {"count": sum(moves.values()), "share": sum(moves.values()) / n if n else 0.0, "moves": dict(moves)},
        "routes": _side_by_side(old["routes"], new["routes"]),
        "models": _side_by_side(old["models"], new["models"]),
        "model_cost_usd": _side_by_side(old["cost_usd"]["models"], new["cost_usd"]["models"]),
        "cost_usd": _change(old["cost_usd"]["total"], new["cost_usd"]["total"]),
        "cache_hits": _change(_hits(old), _hits(new)),
        "rejected": _change(old["outcomes"].get("budget_rejected", 0), new["outcomes"].get("budget_rejected", 0)),
        "budgets_newly_hit": [b for b in new["budgets"] if b["budget"] not in old_hits],
        "moved_sample": (rerouted + remodelled)[:sample],
    }


def _hits(figures: dict) -> int:
    return figures["cache"]["exact"] + figures["cache"]["semantic"]


def _side_by_side(old: dict, new: dict) -> dict:
    return {name: {"old": old.get(name, 0), "new": new.get(name, 0)} for name in dict.fromkeys([*old, *new])}


def _change(old: float, new: float) -> dict:
    """`percent`: None for a change from nothing (no share of 0 says how much)."""
    percent = (new - old) / old * 100 if old else (0.0 if not new else None)
    return {"old": old, "new": new, "delta": new - old, "percent": percent}


def measure(condition: Condition, figures: dict) -> float:
    """The figure a condition compares: a change (cost, cache_hits, rejected), a share or count
    (moved), or a count (budgets)."""
    if condition.metric == "moved":
        moved = figures["moved"]
        return moved["share"] * 100 if condition.percent else moved["count"]
    if condition.metric == "budgets":
        return len(figures["budgets_newly_hit"])
    change = figures["cost_usd" if condition.metric == "cost" else condition.metric]
    if condition.metric == "rejected" and condition.percent:
        return change["delta"] / figures["requests"] * 100 if figures["requests"] else 0.0
    if not condition.percent:
        return change["delta"]
    return math.copysign(math.inf, change["delta"]) if change["percent"] is None else change["percent"]


def failed(conditions: list[Condition], figures: dict) -> list[str]:
    """The conditions that hold (each fails the gate), with the figure that made it."""
    held = []
    for condition in conditions:
        value = measure(condition, figures)
        if _OPS[condition.op](value, condition.value):
            held.append(f"{condition.text}: {value:+.2f}{'%' if condition.percent else ''}")
    return held


def render(figures: dict, held: list[str]) -> str:
    lines = [f"{figures['requests']:,} requests replayed through both policies", ""]
    lines.append(f"{'route':<24} {'old':>9} {'new':>9} {'change':>9}")
    for route, side in figures["routes"].items():
        lines.append(f"{route:<24} {side['old']:>9,} {side['new']:>9,} {side['new'] - side['old']:>+9,}")
    lines += ["", f"{'model group':<24} {'old':>9} {'new':>9} {'change':>9} {'old USD':>11} {'new USD':>11}"]
    for model, side in figures["models"].items():
        cost = figures["model_cost_usd"][model]
        lines.append(
            f"{model:<24} {side['old']:>9,} {side['new']:>9,} {side['new'] - side['old']:>+9,} "
            f"{cost['old']:>11.6f} {cost['new']:>11.6f}"
        )
    moved, cost, hits = figures["moved"], figures["cost_usd"], figures["cache_hits"]
    lines += [
        "",
        f"moved: {moved['count']:,} requests ({moved['share']:.1%}) changed route or model group",
        f"cost: {cost['old']:.6f} -> {cost['new']:.6f} USD ({cost['delta']:+.6f}, {_percent(cost['percent'])})",
        f"cache hits: {hits['old']:,} -> {hits['new']:,} ({hits['delta']:+,})",
        f"budget rejections: {figures['rejected']['old']:,} -> {figures['rejected']['new']:,}",
    ]
    for hit in figures["budgets_newly_hit"]:
        first = hit["first"]
        lines.append(f"newly hit: budget '{hit['budget']}', first {first['as']} at {first['at']} ({first['t']})")
    if figures["moved_sample"]:
        lines += ["", "requests that moved (a sample; route/model group before -> after):"]
        lines += [f"  {e['from']} -> {e['to']}: {e['prompt']}  [{e['at']}]" for e in figures["moved_sample"]]
    if held:
        lines += ["", "FAILED: " + "; ".join(held)]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "from nothing" if value is None else f"{value:+.1f}%"
