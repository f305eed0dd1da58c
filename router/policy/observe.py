"""The policy's sections on what the router keeps and tells about itself: the ledger's rollups and
raw records (`ledger`)."""

from __future__ import annotations

from pydantic import Field

from router.policy.fields import Duration, Strict

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
