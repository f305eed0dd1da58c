"""Each route and model's recent output sizes: what a budget reserves for the next request's output."""

from __future__ import annotations

from collections import deque

from router.core.budgets import output_estimate


class OutputHistory:
    """Each route and model's recent output sizes (tokens, reasoning included), on this instance:
    what a budget reserves for the next request, once there are enough of them."""

    KEEP = 200
    MIN_SAMPLES = 20

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], deque[int]] = {}
        self._estimates: dict[tuple[str, str, str], int] = {}  # dropped when a new output arrives

    def observe(self, route: str, model: str, tokens: int) -> None:
        self._seen.setdefault((route, model), deque(maxlen=self.KEEP)).append(tokens)
        for how in ("mean", "p90", "p95", "p99"):
            self._estimates.pop((route, model, how), None)

    def estimate(self, route: str, model: str, how: str) -> int | None:
        """None until MIN_SAMPLES outputs were seen."""
        key = (route, model, how)
        found = self._estimates.get(key)
        if found is None:
            seen = self._seen.get((route, model))
            if seen is None or len(seen) < self.MIN_SAMPLES:
                return None
            found = self._estimates[key] = output_estimate(list(seen), how)
        return found
