"""Budget arithmetic, pure: which budgets apply to a request, over which window, and what a request
may cost (worst case before the call, actual after it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from router.core.pricing import TokenCounts, priced
from router.core.request import Identity
from router.policy.schema import Budget, Price

ROLLING_BUCKETS = 30  # a rolling window is summed from this many buckets
_KEEP_AFTER = 3600.0  # counters outlive their window a little, for reports


@dataclass(frozen=True)
class Amounts:
    """What a request spends, in every unit a budget can limit."""

    usd: float
    tokens: float
    reasoning: float

    def of(self, unit: str) -> float:
        return getattr(self, unit)


ZERO = Amounts(0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Span:
    buckets: list[str]  # counter suffixes, oldest first; the last one takes new spend
    ttl: float  # how long the current bucket must live
    start: float  # where the window now begins (epoch seconds)
    reset_at: float  # when spend starts to leave the window
    current_from: float  # when the bucket that takes new spend began: the span holds until reset_at


def window_span(window: str, now: float, tz: ZoneInfo) -> Span:
    if window.startswith("rolling "):
        size = max(float(window.split()[1]) / ROLLING_BUCKETS, 1.0)
        current = int(now // size)
        buckets = [f"r{int(size)}:{i}" for i in range(current - ROLLING_BUCKETS + 1, current + 1)]
        return Span(
            buckets,
            size * (ROLLING_BUCKETS + 1),
            (current - ROLLING_BUCKETS + 1) * size,
            (current + 1) * size,
            current * size,
        )
    local = datetime.fromtimestamp(now, tz)
    if window == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
    elif window == "day":
        start = datetime.combine(local.date(), time(0), tz)
        end = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
    else:  # month
        start = datetime.combine(local.date().replace(day=1), time(0), tz)
        end = datetime.combine((start + timedelta(days=32)).date().replace(day=1), time(0), tz)
    reset_at, begins = end.timestamp(), start.timestamp()
    return Span([f"{window[0]}{start.strftime('%Y%m%d%H')}"], reset_at - now + _KEEP_AFTER, begins, reset_at, begins)


class Spans:
    """`window_span` worked out once per bucket of each window, not on every request (datetime,
    time zone and strftime cost ~10 us a budget); its ttl once a second (a counter outlives its
    window by an hour, so a ttl up to a second long does not matter)."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[Span, float]] = {}  # the span, and when its ttl was set

    def of(self, window: str, now: float, tz: ZoneInfo) -> Span:
        key = (window, tz.key)
        found = self._last.get(key)
        if found is None or not found[0].current_from <= now < found[0].reset_at:
            span = window_span(window, now, tz)
            self._last[key] = (span, now)
            return span
        span, at = found
        if window.startswith("rolling ") or now - at < 1.0:
            return span  # a rolling window's ttl does not depend on now
        span = replace(span, ttl=span.reset_at - now + _KEEP_AFTER)
        self._last[key] = (span, now)
        return span


def limits(budget: Budget) -> list[tuple[str, float]]:
    """(unit, limit) for every limit the budget sets."""
    found = [("usd", budget.limit_usd), ("tokens", budget.limit_tokens), ("reasoning", budget.limit_reasoning_tokens)]
    return [(unit, float(limit)) for unit, limit in found if limit is not None]


def applies(budget: Budget, route: str, model: str | None) -> bool:
    return (not budget.routes or route in budget.routes) and (not budget.models or model in budget.models)


def scopes(budget: Budget, identity: Identity, route: str, model: str | None, tags: tuple[str, ...]) -> list[str]:
    """The counters a request draws on for this budget; none when its identity lacks the field."""
    value = {
        "key": identity.key_hash,
        "team": identity.team,
        "user": identity.user,
        "model": model,
        "route": route,
        "global": "all",
    }
    if budget.per == "tag":
        return list(dict.fromkeys(tags))
    found = value[budget.per]
    return [found] if found else []


def output_estimate(samples: Sequence[int], how: str) -> int:
    """The output a request is expected to produce, from its route and model's recent outputs:
    their mean, or a percentile ("p90"), rounded up."""
    if how == "mean":
        return math.ceil(sum(samples) / len(samples))
    ordered = sorted(samples)
    rank = math.ceil(int(how[1:]) / 100 * len(ordered)) - 1
    return ordered[min(max(rank, 0), len(ordered) - 1)]


def worst_case(price: Price, prompt_tokens: int, max_output: int) -> Amounts:
    """The most a request can spend: its prompt, and all of `max_output` at the dearer of output and reasoning."""
    output_price = max(price.output, price.reasoning or 0.0)
    usd = (prompt_tokens * price.input + max_output * output_price) * 1e-6
    return Amounts(usd, float(prompt_tokens + max_output), float(max_output))


def spent(price: Price, counts: TokenCounts) -> Amounts:
    """What an answer of these tokens cost at `price`, in each unit a budget counts."""
    return Amounts(priced(price, counts), float(counts.prompt + counts.completion), float(counts.reasoning))
