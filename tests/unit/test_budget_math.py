"""Budget windows, scopes and worst-case estimates (pure)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from router import Identity
from router.core.budgets import (
    ROLLING_BUCKETS,
    Spans,
    applies,
    limits,
    output_estimate,
    scopes,
    spent,
    window_span,
    worst_case,
)
from router.core.pricing import token_counts
from router.policy.schema import Budget, Price

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str, tz=BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def test_day_window_follows_the_time_zone():
    span = window_span("day", at("2026-11-22 23:30"), BERLIN)
    assert span.buckets == ["d2026112200"]
    assert span.start == at("2026-11-22 00:00") and span.reset_at == at("2026-11-23 00:00")
    assert span.ttl > 30 * 60  # the counter outlives the window a little


def test_hour_and_month_windows():
    assert window_span("hour", at("2026-11-22 10:59"), BERLIN).reset_at == at("2026-11-22 11:00")
    month = window_span("month", at("2026-12-31 23:00"), BERLIN)
    assert month.start == at("2026-12-01 00:00") and month.reset_at == at("2027-01-01 00:00")


def test_a_day_across_a_clock_change_is_23_hours():
    span = window_span("day", at("2026-03-29 12:00"), BERLIN)  # summer time starts
    assert span.reset_at - span.start == 23 * 3600


def test_rolling_windows_sum_buckets():
    span = window_span("rolling 3000", 1_000_000.0, BERLIN)
    assert len(span.buckets) == ROLLING_BUCKETS
    assert span.buckets[-1] == "r100:10000" and span.buckets[0] == "r100:9971"
    assert span.reset_at == 1_000_100.0 and span.start == 997_100.0


BUDGET = Budget(name="b", per="team", limit_usd=1, limit_reasoning_tokens=100, routes=("chat",), models=("flash",))


def test_scopes_come_from_the_identity():
    who = Identity(key_hash="k", team="blue", user="u", tags=("a", "b"))
    assert scopes(BUDGET, who, "chat", "flash", who.tags) == ["blue"]
    assert scopes(BUDGET, Identity(key_hash="k"), "chat", "flash", ()) == []  # no team: the budget has no counter
    tag = Budget(name="t", per="tag", limit_usd=1)
    assert scopes(tag, who, "chat", "flash", who.tags) == ["a", "b"]
    assert scopes(Budget(name="g", limit_usd=1), who, "chat", "flash", ()) == ["all"]


def test_filters_and_limits():
    assert (
        applies(BUDGET, "chat", "flash") and not applies(BUDGET, "code", "flash") and not applies(BUDGET, "chat", "pro")
    )
    assert limits(BUDGET) == [("usd", 1.0), ("reasoning", 100.0)]


def test_worst_case_prices_all_output_at_the_dearer_rate():
    price = Price(input=1.0, output=2.0, reasoning=4.0)
    estimate = worst_case(price, prompt_tokens=1000, max_output=500)
    assert estimate.usd == pytest.approx((1000 * 1.0 + 500 * 4.0) / 1e6)
    assert (estimate.tokens, estimate.reasoning) == (1500, 500)


def test_spent_counts_reasoning_text_when_usage_omits_it():
    price = Price(input=1.0, output=2.0, reasoning=4.0)
    usage = {"prompt_tokens": 100, "completion_tokens": 60}
    plain = spent(price, token_counts(usage))
    counted = spent(price, token_counts(usage, reasoning_text="x" * 160))  # ~40 tokens of reasoning
    assert plain.reasoning == 0 and counted.reasoning == 40
    assert counted.usd == pytest.approx((100 * 1 + 20 * 2 + 40 * 4) / 1e6)


def test_output_estimates_round_up():
    samples = list(range(1, 101))  # 1..100 tokens
    assert output_estimate(samples, "mean") == 51  # 50.5, rounded up
    assert (output_estimate(samples, "p90"), output_estimate(samples, "p95"), output_estimate(samples, "p99")) == (
        90,
        95,
        99,
    )
    assert output_estimate([7] * 20, "p99") == 7


def test_spans_worked_out_once_a_bucket_equal_window_span_at_every_moment():
    memo, tz = Spans(), ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 29, 0, 59, 58, tzinfo=tz).timestamp()  # across an hour and a DST change
    for window in ("hour", "day", "month", "rolling 60"):
        for step in range(0, 4 * 3600, 7):
            now = start + step
            assert memo.of(window, now, tz) == window_span(window, now, tz), (window, step)


def test_a_span_asked_for_again_within_a_second_keeps_its_ttl_at_most_a_second_long():
    memo, tz = Spans(), ZoneInfo("UTC")
    now = datetime(2026, 5, 4, 10, 30, tzinfo=tz).timestamp()
    first = memo.of("day", now, tz)
    again = memo.of("day", now + 0.6, tz)
    exact = window_span("day", now + 0.6, tz)
    assert again.buckets == exact.buckets and exact.ttl < again.ttl <= exact.ttl + 1.0
    assert again == first  # not worked out again
    assert memo.of("day", now + 1.5, tz) == window_span("day", now + 1.5, tz)
