"""Sliding windows of per-model figures: latency percentiles, time to first token, error rate.

Counts go into one-second buckets keyed by wall-clock time, so every proxy instance adds to the same
buckets of the shared store and reads the same figures back. Latencies are kept as log-scale
histograms (5 % wide bins): adding a sample is one counter, a percentile is a walk over a few dozen
bins, and buckets from many instances merge by adding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BUCKET_SECONDS = 1
_RATIO = 1.05
_LOG_RATIO = math.log(_RATIO)
REQUESTS, ERRORS, LATENCY, TTFT = "n", "e", "l", "t"  # field names; histogram bins are "l<bin>", "t<bin>"


def _bin(seconds: float) -> int:
    return max(0, int(math.log(max(seconds * 1000.0, 1.0)) / _LOG_RATIO))


def _bin_value(index: int) -> float:
    """A bin's geometric middle, in seconds: within 2.5 % of any sample in it."""
    return _RATIO ** (index + 0.5) / 1000.0


def bucket_of(now: float) -> int:
    return int(now // BUCKET_SECONDS) * BUCKET_SECONDS


def bucket_key(subject: str, start: int) -> str:
    return f"win:{subject}:{start}"


class Tally:
    """Counts recorded in this process and not yet added to the shared store."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, int], dict[str, int]] = {}

    def record(
        self,
        subjects: Iterable[str],
        now: float,
        latency: float | None = None,
        ttft: float | None = None,
        error: bool = False,
    ) -> None:
        fields = {REQUESTS: 1}
        if error:
            fields[ERRORS] = 1
        if latency is not None:
            fields[f"{LATENCY}{_bin(latency)}"] = 1
        if ttft is not None:
            fields[f"{TTFT}{_bin(ttft)}"] = 1
        start = bucket_of(now)
        for subject in subjects:
            counts = self.pending.setdefault((subject, start), {})
            for field, amount in fields.items():
                counts[field] = counts.get(field, 0) + amount

    def drain(self) -> dict[tuple[str, int], dict[str, int]]:
        pending, self.pending = self.pending, {}
        return pending


@dataclass(frozen=True)
class Figures:
    requests: int = 0
    errors: int = 0
    latency_samples: int = 0
    ttft_samples: int = 0
    p50_latency: float | None = None
    p95_latency: float | None = None
    p99_latency: float | None = None
    ttft_p95: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def value(self, metric: str) -> float | None:
        return getattr(self, metric)

    def samples(self, metric: str) -> int:
        """How many observations a metric's value rests on."""
        if metric == "error_rate":
            return self.requests
        return self.ttft_samples if metric == "ttft_p95" else self.latency_samples


def summarize(buckets: Iterable[Mapping[str, float]]) -> Figures:
    totals: dict[str, float] = {}
    for bucket in buckets:
        for field, amount in bucket.items():
            totals[field] = totals.get(field, 0) + amount
    latency = _histogram(totals, LATENCY)
    ttft = _histogram(totals, TTFT)
    return Figures(
        requests=int(totals.get(REQUESTS, 0)),
        errors=int(totals.get(ERRORS, 0)),
        latency_samples=sum(latency.values()),
        ttft_samples=sum(ttft.values()),
        p50_latency=_percentile(latency, 0.50),
        p95_latency=_percentile(latency, 0.95),
        p99_latency=_percentile(latency, 0.99),
        ttft_p95=_percentile(ttft, 0.95),
    )


def _histogram(totals: Mapping[str, float], prefix: str) -> dict[int, int]:
    return {
        int(field[1:]): int(n) for field, n in totals.items() if field[0] == prefix and field[1:].isdigit() and n > 0
    }


def _percentile(histogram: Mapping[int, int], q: float) -> float | None:
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return _bin_value(index)
    return _bin_value(max(histogram))


class Mirror:
    """This process's copy of the shared buckets of the last `horizon` seconds, per subject."""

    def __init__(self, horizon: float):
        self.horizon = horizon
        self.buckets: dict[str, dict[int, Mapping[str, float]]] = {}

    def put(self, subject: str, start: int, fields: Mapping[str, float]) -> None:
        if fields:
            self.buckets.setdefault(subject, {})[start] = fields

    def prune(self, now: float) -> None:
        oldest = now - self.horizon
        for buckets in self.buckets.values():
            for start in [s for s in buckets if s < oldest]:
                del buckets[start]

    def figures(
        self, subjects: str | tuple[str, ...], since: float, until: float, extra: Mapping[str, float] | None = None
    ) -> Figures:
        """Figures of the buckets of a subject (or several together: a region's model groups) that
        start within [since, until], plus `extra` counts."""
        buckets = [
            fields
            for subject in ((subjects,) if isinstance(subjects, str) else subjects)
            for start, fields in self.buckets.get(subject, {}).items()
            if since <= start <= until
        ]
        return summarize([*buckets, extra] if extra else buckets)


def overdue(ages: Iterable[float], threshold: float) -> dict[str, int]:
    """Latency samples for attempts still running past `threshold`, at their age so far: each is
    surely slower than the threshold, so a hung model counts as slow before its attempts time out."""
    counts: dict[str, int] = {}
    for age in ages:
        if age > threshold:
            field = f"{LATENCY}{_bin(age)}"
            counts[field] = counts.get(field, 0) + 1
    return counts
