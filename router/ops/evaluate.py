"""Scoring a policy on labelled prompts (`python -m router eval POLICY LABELLED.jsonl`): how often it
sends a prompt to a model that fits it, per intent, language and route, where the misses go, and
what the chosen models cost at the policy's prices. Offline: no proxy, no store.

A labelled line is one JSON object: the request (`prompt`, or `messages` for a conversation), its
`intent`, and what fits it: `fits`, the model groups (targets) that serve it well, and/or `route`,
the route that should take it. With `fits` a decision fits when its target is one of them, whatever
the policy calls its routes; with only `route`, when it took that route. `lang` is optional.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from router.core.decide import CompiledPolicy, Decision
from router.core.pricing import cost_usd
from router.errors import RequestRejected

Decide = Callable[[dict], Decision]  # raises RequestRejected for a request the policy refuses


@dataclass(frozen=True)
class Example:
    body: dict
    intent: str
    route: str | None
    fits: frozenset[str]
    lang: str


@dataclass
class Outcome:
    example: Example
    route: str  # the route taken, or "refused"
    target: str
    fit: bool
    cost_usd: float


def read_labelled(path: str | Path, auto_model: str) -> tuple[list[Example], list[str]]:
    """The examples of a JSON lines file, and one message per line that is not one (skipped)."""
    examples, problems = [], []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                examples.append(_example(json.loads(line), auto_model))
            except (ValueError, TypeError) as exc:
                problems.append(f"{path}:{number}: {exc}")
    return examples, problems


def _example(row: object, auto_model: str) -> Example:
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if isinstance(row.get("messages"), list):
        messages = row["messages"]
    elif isinstance(row.get("prompt"), str):
        messages = [{"role": "user", "content": row["prompt"]}]
    else:
        raise ValueError("needs `prompt` (a string) or `messages` (a list)")
    route, fits = row.get("route"), row.get("fits") or []
    if not (isinstance(route, str) or route is None) or not isinstance(fits, list):
        raise ValueError("`route` must be a string and `fits` a list of model groups")
    if route is None and not fits:
        raise ValueError("needs `fits` (the model groups that fit it) or `route`")
    intent = row.get("intent") or route
    if not isinstance(intent, str):
        raise ValueError("`intent` must be a string")
    body = {"model": auto_model, "messages": messages}
    return Example(body, intent, route, frozenset(map(str, fits)), str(row.get("lang") or "-"))


def score(compiled: CompiledPolicy, examples: Iterable[Example], decide: Decide, output_tokens: int) -> list[Outcome]:
    outcomes = []
    for example in examples:
        try:
            decision = decide(example.body)
        except RequestRejected:
            outcomes.append(Outcome(example, "refused", "-", False, 0.0))
            continue
        fit = decision.target in example.fits if example.fits else decision.route == example.route
        usage = {"prompt_tokens": decision.prompt_tokens, "completion_tokens": output_tokens}
        cost = cost_usd(compiled.spec(decision.model).price, usage) if decision.model else 0.0
        outcomes.append(Outcome(example, decision.route, decision.target, fit, cost))
    return outcomes


def summary(outcomes: list[Outcome]) -> dict:
    """The figures `render` prints, as one JSON-ready object."""
    by_intent: dict[str, list[bool]] = defaultdict(list)
    by_lang: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    confusion: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        by_intent[o.example.intent].append(o.fit)
        by_lang[o.example.lang][o.example.intent].append(o.fit)
        confusion[o.example.intent][o.target] += 1
    return {
        "requests": len(outcomes),
        "macro_fit": _macro(by_intent),
        "intents": {i: {"n": len(f), "fit": sum(f) / len(f)} for i, f in sorted(by_intent.items())},
        "languages": {lang: _macro(fits) for lang, fits in sorted(by_lang.items())},
        "routes": _route_figures(outcomes),
        "confusion": {i: dict(c.most_common()) for i, c in sorted(confusion.items())},
        "cost_usd_per_1k": 1000 * sum(o.cost_usd for o in outcomes) / (len(outcomes) or 1),
    }


def _macro(fits: dict[str, list[bool]]) -> float:
    """The mean over intents of each intent's share of fitting decisions: every intent counts alike."""
    return sum(sum(f) / len(f) for f in fits.values()) / (len(fits) or 1)


def _route_figures(outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    """Precision and recall of each labelled route (examples with a `route` only)."""
    labelled = [o for o in outcomes if o.example.route is not None]
    figures = {}
    for route in sorted({o.example.route for o in labelled if o.example.route}):
        taken = [o for o in labelled if o.route == route]
        wanted = [o for o in labelled if o.example.route == route]
        hits = sum(o.example.route == route for o in taken)
        figures[route] = {
            "precision": hits / len(taken) if taken else 0.0,
            "recall": hits / len(wanted) if wanted else 0.0,
            "n": len(wanted),
        }
    return figures


def render(figures: dict) -> str:
    lines = [f"{figures['requests']} requests: macro fit {figures['macro_fit']:.1%}"]
    lines.append("  by language: " + ", ".join(f"{k} {v:.1%}" for k, v in figures["languages"].items()))
    lines.append(f"  cost at the policy's prices: {figures['cost_usd_per_1k']:.4f} USD per 1K requests")
    lines.append(f"\n{'intent':<16} {'n':>4} {'fit':>7}  where it went")
    for intent, row in figures["intents"].items():
        went = ", ".join(f"{t} {n}" for t, n in figures["confusion"][intent].items())
        lines.append(f"{intent:<16} {row['n']:>4} {row['fit']:>7.1%}  {went}")
    if figures["routes"]:
        lines.append(f"\n{'route':<16} {'n':>4} {'precision':>10} {'recall':>7}")
        for route, row in figures["routes"].items():
            lines.append(f"{route:<16} {row['n']:>4} {row['precision']:>10.1%} {row['recall']:>7.1%}")
    return "\n".join(lines)
