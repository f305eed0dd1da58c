"""A replay's figures (router.ops.replay) as one JSON-ready summary, and as tables for a terminal:
requests and cost per route and per model group, the cache hits the policy would have had, each
budget it would have hit (first where and when) and each shift it would have made."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

from router.cache.keys import semantic_text
from router.ops.recorded import Traffic
from router.ops.replay import Outcome

SCALING = (
    "output tokens where the model changed: visible output scaled by the ratio of the two model groups' mean "
    "visible output in this traffic, reasoning by the ratio of their mean reasoning (the new group's mean when "
    "the old one did not reason), each mean from at least 20 recorded answers (else unscaled); requests "
    "recorded without usage: the router's prompt estimate and the new group's mean output"
)


def summary(policy: str, traffic: Traffic, outcomes: list[Outcome], shifts: list[dict]) -> dict:
    routes: Counter[str] = Counter()
    models: Counter[str] = Counter()
    route_cost: defaultdict[str, float] = defaultdict(float)
    model_cost: defaultdict[str, float] = defaultdict(float)
    model_tokens: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    cache: Counter[str] = Counter()
    saved = 0.0
    for o in outcomes:
        if o.route is not None and o.outcome != "refused":
            routes[o.route] += 1
            route_cost[o.route] += o.cost_usd
        if o.target is not None and o.outcome not in ("refused", "budget_rejected"):
            models[o.target] += 1
            model_cost[o.target] += o.cost_usd
            model_tokens[o.target][0] += o.prompt_tokens
            model_tokens[o.target][1] += o.output_tokens
        cache[o.cache.split(";")[0]] += 1
        saved += o.saved_usd
    recorded = [i.cost_usd for i in traffic.items if i.cost_usd is not None]
    return {
        "policy": policy,
        "requests": len(outcomes),
        "sources": dict(Counter(i.source for i in traffic.items)),
        "outcomes": dict(Counter(o.outcome for o in outcomes)),
        "routes": dict(routes.most_common()),
        "models": dict(models.most_common()),
        "cost_usd": {
            "total": round(sum(o.cost_usd for o in outcomes), 9),
            "routes": {r: round(route_cost[r], 9) for r in routes},
            "models": {m: round(model_cost[m], 9) for m in models},
        },
        "tokens": {m: {"prompt": p, "output": c} for m, (p, c) in model_tokens.items()},
        "cache": {k: cache.get(k, 0) for k in ("exact", "semantic", "miss", "off")} | {"saved_usd": round(saved, 9)},
        "budgets": budget_hits(outcomes),
        "shifts": [{**s, "t": _iso(s["t"])} for s in shifts],
        "recorded": {
            "cost_usd": round(sum(recorded), 9) if recorded else None,
            "requests_with_cost": len(recorded),
            "routes": dict(Counter(i.route for i in traffic.items if i.route is not None).most_common()),
        },
        "skipped": {"lines": traffic.problems, "uncaptured": traffic.uncaptured},
        "redacted": sum(1 for i in traffic.items if i.redacted),  # decided on the redacted text
        "scaling": SCALING,
    }


def budget_hits(outcomes: list[Outcome]) -> list[dict]:
    """Each budget the replay hit: the first request it rejected, downgraded or warned of, and how many."""
    hits: dict[str, dict] = {}
    for o in outcomes:
        for name, what in _budget_events(o):
            hit = hits.setdefault(name, {"budget": name, "first": None, "rejected": 0, "downgraded": 0, "warned": 0})
            hit[what] += 1
            if hit["first"] is None:
                hit["first"] = {"at": o.item.where, "t": _iso(o.item.t), "as": what}
    return list(hits.values())


def _budget_events(o: Outcome) -> list[tuple[str, str]]:
    events = [(name, "warned") for name in o.warned_by]
    if o.rejected_by:
        events.append((o.rejected_by, "rejected"))
    if o.downgraded_by:
        events.append((o.downgraded_by, "downgraded"))
    return events


def prompt_of(outcome: Outcome, width: int = 100) -> str:
    text = " ".join((semantic_text(outcome.item.body.get("messages") or []) or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def render(figures: dict) -> str:
    n = figures["requests"] or 1
    cost = figures["cost_usd"]
    lines = [f"replayed {figures['requests']:,} requests through {figures['policy']}", ""]
    lines.append(f"{'route':<24} {'requests':>9} {'share':>7} {'cost USD':>12}")
    for route, count in figures["routes"].items():
        lines.append(f"{route:<24} {count:>9,} {count / n:>7.1%} {cost['routes'][route]:>12.6f}")
    lines += [
        "",
        f"{'model group':<24} {'requests':>9} {'share':>7} {'cost USD':>12} {'prompt tok':>11} {'output tok':>11}",
    ]
    for model, count in figures["models"].items():
        tokens = figures["tokens"][model]
        lines.append(
            f"{model:<24} {count:>9,} {count / n:>7.1%} {cost['models'][model]:>12.6f} "
            f"{tokens['prompt']:>11,} {tokens['output']:>11,}"
        )
    recorded = figures["recorded"]["cost_usd"]
    lines += ["", f"cost {cost['total']:.6f} USD" + ("" if recorded is None else f" (recorded {recorded:.6f} USD)")]
    c = figures["cache"]
    lines.append(f"cache: {c['exact']:,} exact and {c['semantic']:,} semantic hits, saving {c['saved_usd']:.6f} USD")
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(figures["outcomes"].items()))
    lines.append(f"outcomes: {outcomes}")
    for hit in figures["budgets"]:
        first = hit["first"]
        lines.append(
            f"budget '{hit['budget']}': first {first['as']} at {first['at']} ({first['t']}); "
            f"{hit['rejected']:,} rejected, {hit['downgraded']:,} downgraded, {hit['warned']:,} warned"
        )
    lines += _shift_lines(figures["shifts"])
    if figures["redacted"]:
        lines.append(
            f"{figures['redacted']:,} requests were captured with parts redacted: replayed as redacted, "
            "their routes may differ from what the full text got"
        )
    skipped = figures["skipped"]
    if skipped["lines"] or skipped["uncaptured"]:
        lines.append(
            f"skipped: {len(skipped['lines']):,} lines that are not requests (listed on stderr), "
            f"{skipped['uncaptured']:,} ledger records without a captured request"
        )
    return "\n".join(lines)


def _shift_lines(shifts: list[dict], shown: int = 3) -> list[str]:
    """Per rule: how often it moved traffic, and its first changes (`--json` has them all)."""
    lines = []
    for rule in dict.fromkeys(s["rule"] for s in shifts):
        changes = [s for s in shifts if s["rule"] == rule]
        started = sum(1 for s in changes if s["from"] == "normal")
        lines.append(f"shift '{rule}' ({changes[0]['watch']}): moved traffic {started:,} times")
        lines += [f"  {s['from']} -> {s['to']} at {s['t']}" for s in changes[:shown]]
        if len(changes) > shown:
            lines.append(f"  ... {len(changes) - shown:,} more changes (--json lists them)")
    return lines


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
