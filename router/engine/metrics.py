"""Prometheus metrics of the router, labelled by what the policy names (routes, models, model
groups and deployments, budgets, shift rules, cache verdicts): never by key, user or prompt unless
the policy's `metrics.labels` asks for key, team or user on the request counters.

Request figures come from the ledger records as they are flushed (the writer thread, off the
request path); attempts, decision times and budget headroom are kept as requests leave them and
set by `flush` (the sync loop, every 0.5 s, and every scrape); shift states from each evaluation.
With several worker processes, set PROMETHEUS_MULTIPROC_DIR (LiteLLM's proxy wipes it at start and
marks dead workers): each worker writes its samples there and the endpoint, on any worker, adds them
up. Without it a worker serves its own figures.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from router.core.shifts import NORMAL, PROBING, SHIFTED

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_DECISION = (25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3)
PHASES = {NORMAL: 0, SHIFTED: 1, PROBING: 2}
TOKEN_KINDS = (("prompt", "input"), ("cached", "cached"), ("completion", "output"), ("reasoning", "reasoning"))
IDENTITY_LABELS = ("key", "team", "user")


class Metrics:
    def __init__(self, labels: Sequence[str] = ()):
        """`labels`: identity labels (key, team, user) the request counters carry besides their own."""
        self.extra = tuple(label for label in IDENTITY_LABELS if label in labels)
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self._children: dict[tuple, Any] = {}  # bounded like the series: by the policy's names
        self._headroom: dict[tuple[str, str], float] = {}  # the latest admissions' figures, set at `flush`
        # Decision times and calls to model groups, observed at `flush`.
        self._decisions: deque[float] = deque(maxlen=100_000)
        self._attempts: deque[tuple[str, str | None, float | None, float | None, bool]] = deque(maxlen=100_000)
        r = self.registry
        base = ("route", "model")
        self.requests = Counter(
            "router_requests",
            "Requests by route, model, outcome, cache verdict and what decided the model",
            (*base, "outcome", "cache", "decided_by", *self.extra),
            registry=r,
        )
        self.duration = Histogram(
            "router_request_duration_seconds", "Request latency by route and model", base, buckets=_LATENCY, registry=r
        )
        self.tokens = Counter("router_tokens", "Tokens by route, model and kind", (*base, "kind"), registry=r)
        self.cost = Counter("router_cost_usd", "Spend at the policy's prices (USD)", (*base, *self.extra), registry=r)
        self.saved = Counter("router_cache_saved_usd", "What cache hits saved (USD)", base, registry=r)
        self.fallbacks = Counter(
            "router_fallbacks",
            "Requests served by another model group than the chosen one",
            ("route", "chosen", "served"),
            registry=r,
        )
        self.downgrades = Counter(
            "router_downgrades",
            "Requests a budget moved to a cheaper model",
            ("route", "from_model", "model"),
            registry=r,
        )
        self.budget_spend = Counter(
            "router_budget_spend_usd", "Spend counted by each budget (USD)", ("budget",), registry=r
        )
        self.headroom = Gauge(
            "router_budget_headroom_ratio",
            "The share of a budget's limit left, for the scope of its latest request",
            ("budget", "unit"),
            registry=r,
            multiprocess_mode="livemin",
        )
        self.attempts = Counter(
            "router_attempts",
            "Calls to model groups by deployment and outcome",
            ("model_group", "deployment", "outcome"),
            registry=r,
        )
        self.attempt_duration = Histogram(
            "router_attempt_duration_seconds",
            "Latency of each call to a model group",
            ("model_group",),
            buckets=_LATENCY,
            registry=r,
        )
        self.ttft = Histogram(
            "router_ttft_seconds",
            "Time to a stream's first token by model group",
            ("model_group",),
            buckets=_LATENCY,
            registry=r,
        )
        self.shift = Gauge(
            "router_shift_state",
            "Each shift rule's state: 0 normal, 1 shifted, 2 probing",
            ("rule", "watch"),
            registry=r,
            multiprocess_mode="livemax",
        )
        self.decision = Histogram(
            "router_decision_seconds",
            "Time to decide a request (routing, affinity, shifts, budgets)",
            buckets=_DECISION,
            registry=r,
        )

    def _child(self, metric, *values: str) -> Any:
        """The metric's series for these label values, looked up once (prometheus_client's own
        `labels` validates and locks on every call: ~4 us, eleven times a request)."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # -- fed by the engine -----------------------------------------------------------------------

    def records(self, records: Iterable[dict]) -> None:
        """The ledger records just flushed: one per request. Counters are summed per series first
        and increased once each (a flush holds many records of a few series)."""
        adds: dict[tuple, float] = defaultdict(float)
        for record in records:
            route, model = str(record.get("route")), str(record.get("model"))
            who = tuple(str(record.get(label) or "") for label in self.extra)
            outcome, cache = str(record.get("outcome")), str(record.get("cache", "off"))
            adds[self.requests, (route, model, outcome, cache, str(record.get("decided_by", "route")), *who)] += 1
            latency = record.get("latency_ms")
            if latency is not None:
                self._child(self.duration, route, model).observe(latency / 1000)
            tokens = record.get("tokens") or {}
            for field, kind in TOKEN_KINDS:
                if tokens.get(field):
                    adds[self.tokens, (route, model, kind)] += tokens[field]
            if record.get("cost_usd"):
                adds[self.cost, (route, model, *who)] += record["cost_usd"]
            if record.get("saved_usd"):
                adds[self.saved, (route, model)] += record["saved_usd"]
            served, chosen = record.get("served"), record.get("target")
            if outcome == "ok" and served and chosen and served != chosen:
                adds[self.fallbacks, (route, str(chosen), str(served))] += 1
            if record.get("downgraded_from"):
                adds[self.downgrades, (route, str(record["downgraded_from"]), model)] += 1
            for budget, _, usd, _, _ in record.get("budgets") or ():
                if usd:
                    adds[self.budget_spend, (str(budget),)] += usd
        for (metric, values), amount in adds.items():
            self._child(metric, *values).inc(amount)

    def attempt(
        self, group: str, deployment: str | None, latency: float | None, ttft: float | None, error: bool
    ) -> None:
        """One call to a model group, counted at the next `flush` (see `decided`)."""
        self._attempts.append((group, deployment, latency, ttft, error))

    def standing(self, budgets: Iterable[tuple]) -> None:
        """An admission's standing (router.engine.budget_book.Standing): budget, unit, limit and the
        total after this request's reservation, first. Kept until the next `flush` sets the gauges:
        a gauge's `set` takes a lock and, with several workers, writes a file."""
        for budget, unit, limit, total, *_ in budgets:
            self._headroom[budget, unit] = max(0.0, (limit - total) / limit) if limit else 0.0

    def shifts(self, states: Iterable[tuple[str, str, str]]) -> None:
        """(rule, what it watches, phase) of every shift rule, after an evaluation."""
        for rule, watch, phase in states:
            self._child(self.shift, rule, watch).set(PHASES.get(phase, 0))

    def decided(self, seconds: float) -> None:
        """Kept until the next `flush`, like the headroom: an observation takes the histogram's
        lock and, with several workers, writes a file."""
        self._decisions.append(seconds)

    def flush(self) -> None:
        """The figures requests left for the gauges, the decision histogram and the attempts
        (the runtime's sync loop calls this every 0.5 s, and every scrape does)."""
        for (budget, unit), share in list(self._headroom.items()):
            self._child(self.headroom, budget, unit).set(share)
        while self._decisions:
            self.decision.observe(self._decisions.popleft())
        while self._attempts:
            group, deployment, latency, ttft, error = self._attempts.popleft()
            self._child(self.attempts, group, deployment or "", "error" if error else "ok").inc()
            if latency is not None:
                self._child(self.attempt_duration, group).observe(latency)
            if ttft is not None:
                self._child(self.ttft, group).observe(ttft)

    # -- the endpoint ----------------------------------------------------------------------------

    def render(self) -> bytes:
        """The exposition text: every worker's samples with PROMETHEUS_MULTIPROC_DIR, else this one's."""
        self.flush()
        if self.multiprocess:
            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)
