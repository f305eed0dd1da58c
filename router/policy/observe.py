"""The policy's sections on what the router keeps and tells about itself: the ledger's rollups and
raw records (`ledger`), the requests it keeps for replays (`capture`), its Prometheus metrics
(`metrics`) and the objectives alerts watch (`slos`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from router.policy.fields import Duration, Name, Strict

DAY = 86400.0
LONGEST_WINDOW = 32 * DAY  # a calendar month and the hour that holds its start


class RecordsConfig(Strict):
    """Every raw ledger record, in JSON lines files (one per day and process) kept `retention`."""

    path: str | None = None  # default: `ledger/` beside the state file (`state.path`)
    retention: Duration = Field(30 * DAY, gt=0)


class LedgerConfig(Strict):
    """Hourly rollups (requests, tokens by kind, spend, cache savings, latency per route, model, key,
    team, user and budget) kept `rollups`, from which `report` works; and the raw records. The
    state store keeps only the newest records, so totals never depend on how many it holds."""

    rollups: Duration = Field(35 * DAY, ge=LONGEST_WINDOW)  # a month's report and budgets stay whole
    records: RecordsConfig | None = RecordsConfig()  # null: no raw records beyond the store's newest


class CaptureConfig(Strict):
    """What a replay (`python -m router replay`) needs of each request besides its ledger record:
    its messages and parameters and who sent it, kept with the raw records on disk and never in
    the state store. Off by default: prompts may hold personal data. Each `redact` expression's
    matches become "[redacted]" before anything is written; `sample` is the share of requests kept."""

    prompts: bool = False
    redact: tuple[str, ...] = ()
    sample: float = Field(1.0, gt=0, le=1)

    @field_validator("redact")
    @classmethod
    def _expressions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value


class MetricsConfig(Strict):
    """A Prometheus endpoint on the proxy's own port (`path`), unauthenticated like LiteLLM's
    /metrics: labels name routes, models, budgets and shift rules, never a key unless `labels` asks."""

    enabled: bool = True
    path: str = "/router/metrics"
    labels: tuple[Literal["key", "team", "user"], ...] = ()  # identity labels on the request counters

    @field_validator("path")
    @classmethod
    def _a_path(cls, value: str) -> str:
        if not value.startswith("/") or value.rstrip("/") in ("", "/v1", "/chat", "/metrics"):
            raise ValueError(f"a path of its own, such as /router/metrics, not {value!r}")
        return value.rstrip("/")


class Slo(Strict):
    """An objective for a route (its requests) or a model (the calls to its group): a p99 latency
    and/or an error rate, held over `window`. `python -m router alerts` turns each into a Prometheus
    alert that fires once the objective has been missed for `window`."""

    name: Name
    route: Name | None = None
    model: Name | None = None
    p99: Duration | None = Field(None, gt=0)
    error_rate: float | None = Field(None, gt=0, lt=1)
    window: Duration = Field(300.0, ge=60)

    @model_validator(mode="after")
    def _one_subject_some_objective(self) -> Slo:
        if (self.route is None) == (self.model is None):
            raise ValueError("give `route` or `model`, one of the two")
        if self.p99 is None and self.error_rate is None:
            raise ValueError("give `p99`, `error_rate` or both")
        return self


class WebhookConfig(Strict):
    """Slack-compatible webhook alerts (`text`, and the event under `router`): each budget scope
    passing each share of `thresholds` of its limit in a window, each shift's start and end; once
    each, retried `retries` times."""

    url: str = Field(pattern=r"^https?://")
    thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)
    retries: int = Field(5, ge=0, le=20)
    timeout: Duration = Field(5.0, gt=0)

    @field_validator("thresholds")
    @classmethod
    def _ascending_shares(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not 0 < t <= 1 for t in value) or list(value) != sorted(set(value)):
            raise ValueError("shares of a limit, ascending, each above 0 and at most 1: e.g. [0.5, 0.8, 1.0]")
        return value
