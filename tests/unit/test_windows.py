"""Window figures: histogram percentiles within a bin's width, merged buckets, time ranges."""

from __future__ import annotations

import random

import pytest

from router.core.windows import Mirror, Tally, bucket_key, overdue, summarize


def _tally(samples, now=1000.0, subject="m", **kw) -> dict:
    tally = Tally()
    for latency in samples:
        tally.record([subject], now, latency=latency, **kw)
    return tally.drain()


def test_percentiles_are_within_the_bin_width_of_the_exact_ones():
    rng = random.Random(7)
    samples = [rng.lognormvariate(0, 0.8) for _ in range(5000)]
    figures = summarize(_tally(samples).values())
    exact = sorted(samples)
    for q, value in ((0.50, figures.p50_latency), (0.95, figures.p95_latency), (0.99, figures.p99_latency)):
        assert value == pytest.approx(exact[int(q * len(exact)) - 1], rel=0.05)
    assert figures.latency_samples == figures.requests == 5000 and figures.errors == 0


def test_buckets_from_several_instances_add_up():
    one, two = _tally([0.1] * 90), _tally([5.0] * 10)
    merged = {}
    for part in (one, two):
        for key, fields in part.items():
            target = merged.setdefault(key, {})
            for field, n in fields.items():
                target[field] = target.get(field, 0) + n
    figures = summarize(merged.values())
    assert figures.requests == 100
    assert figures.p50_latency == pytest.approx(0.1, rel=0.03)
    assert figures.p95_latency == pytest.approx(5.0, rel=0.03)


def test_errors_ttft_and_subjects():
    tally = Tally()
    tally.record(["g", "g#d1"], 10.2, latency=1.0, ttft=0.2)
    tally.record(["g", "g#d1"], 10.7, error=True)
    tally.record(["g"], 11.1, latency=2.0)
    pending = tally.drain()
    assert set(pending) == {("g", 10), ("g#d1", 10), ("g", 11)}
    assert tally.drain() == {}
    figures = summarize(pending[k] for k in pending if k[0] == "g")
    assert (figures.requests, figures.errors, figures.latency_samples, figures.ttft_samples) == (3, 1, 2, 1)
    assert figures.error_rate == pytest.approx(1 / 3)
    assert figures.ttft_p95 == pytest.approx(0.2, rel=0.03)
    assert (
        figures.samples("error_rate") == 3 and figures.samples("ttft_p95") == 1 and figures.samples("p95_latency") == 2
    )
    assert bucket_key("g", 10) == "win:g:10"


def test_mirror_reads_a_time_range_and_forgets_old_buckets():
    mirror = Mirror(horizon=60)
    for start, latency in ((100, 0.1), (130, 1.0), (159, 3.0)):
        mirror.put("m", start, _tally([latency], now=start)[("m", start)])
    assert mirror.figures("m", 125, 160).requests == 2
    assert mirror.figures("m", 150, 160).p50_latency == pytest.approx(3.0, rel=0.03)
    assert mirror.figures("other", 0, 200).requests == 0 and mirror.figures("other", 0, 200).p95_latency is None
    mirror.prune(now=180)  # keeps 120..180
    assert mirror.figures("m", 0, 200).requests == 2


def test_attempts_still_running_count_as_slow_only_past_the_threshold():
    extra = overdue([0.5, 2.9, 3.5, 10.0], threshold=3.0)
    assert sum(extra.values()) == 2
    figures = Mirror(60).figures("m", 0, 100, extra)
    assert figures.latency_samples == 2 and figures.requests == 0  # no effect on error rates
    assert figures.p50_latency == pytest.approx(3.5, rel=0.03)
