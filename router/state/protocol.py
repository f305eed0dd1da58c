"""The state store: a handful of primitives every backend (memory, SQLite, Redis) provides.

Calls are synchronous; async callers run them in a worker thread. Values are bytes; keys are
plain strings that the callers namespace (`cache:...`, `stats:...`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# The most settlements or log entries one `settle_many` or `append_many` call is given: a backlog an
# outage left goes out in steps that neither hold SQLite's write lock nor block Redis for long.
WRITE_BATCH = 500
Tallies = Mapping[str, Mapping[str, float]]  # counter group -> field -> amount


class StoreUnavailable(Exception):
    """The shared store cannot be reached; callers degrade instead of failing the request."""


@dataclass(frozen=True)
class Ask:
    """One counter to reserve in: the numbers at `keys` (a window's buckets, the current one last)
    plus `amount` must stay within `limit`; a `soft` ask is added even when it does not."""

    keys: tuple[str, ...]
    amount: float
    limit: float | None
    ttl: float
    soft: bool = False


@dataclass(frozen=True)
class Settlement:
    """One counter of a reservation turned into real spend."""

    key: str
    reserved: float  # what the reservation added to the counter
    actual: float  # what the request really spent
    ttl: float


@dataclass(frozen=True)
class Reserved:
    refused: int | None  # the index of the first hard ask over its limit: then nothing was added
    totals: list[float]  # each ask's window total, after the additions when they were made
    over: list[bool]  # each ask over its limit (a soft ask over its limit was still added)


class StateStore(Protocol):
    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store `value` for `ttl` seconds."""

    def set_many(self, items: list[tuple[str, bytes, float]]) -> None:
        """`set` of each (key, value, ttl), in one round trip."""

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """`get` of each key, in one round trip."""

    def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        """Add `amount` to a number (0 when absent) atomically, keeping it `ttl` seconds more when
        given (forever otherwise); return the new value."""

    def reserve(self, asks: list[Ask], hold: str | None = None) -> Reserved:
        """All or nothing, in one step: when no hard ask goes over its limit, add every amount to its
        current bucket (kept `ttl` seconds) and, when `hold` is given, record that reservation; else
        add nothing. Budgets use it so that concurrent requests cannot overrun a limit between a
        check and an add, in one round trip."""

    def settle(self, hold: str | None, changes: list[Settlement]) -> None:
        """Turn reservation `hold` into real spend, in one step: while the store still records it,
        add `actual - reserved` to each counter; when it does not (the store lost its data, or
        nothing was reserved), add `actual` alone. Forget the reservation; no counter goes below 0.
        Settling twice therefore cannot take a reservation back twice."""

    def settle_many(self, batch: list[tuple[str | None, list[Settlement]]]) -> None:
        """`settle` of each (hold, changes), all or none, in one round trip: what a writer that
        holds settlements back for a moment sends at once."""

    def tally(self, counts: Tallies, ttl: float) -> None:
        """Add to named fields of counter groups (key -> field -> amount), each group kept `ttl`
        seconds more, in one round trip. Latency windows keep their histogram buckets this way."""

    def tallies(self, keys: list[str]) -> list[dict[str, float]]:
        """Each group's fields ({} when absent or expired), in one round trip."""

    def append(self, log: str, payload: bytes, max_len: int) -> str:
        """Append to a log that keeps about its `max_len` newest entries; return the entry id."""

    def append_many(
        self, log: str, payloads: list[bytes], max_len: int, counts: Tallies | None = None, ttl: float = 0.0
    ) -> list[str]:
        """`append` of each payload, in order, and `tally(counts, ttl)` when given, all or none, in
        one round trip; their entry ids. The ledger's rollups go with its records this way."""

    def read(self, log: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        """Entries after id `after` (from the oldest kept when None), oldest first."""

    def close(self) -> None: ...


def hold_key(hold: str) -> str:
    return f"budget:hold:{hold}"


def hold_ttl(asks: list[Ask]) -> float:
    """A reservation is recorded as long as its longest-lived counter: it cannot outlive them."""
    return max(ask.ttl for ask in asks)


def limit_of(ask: Ask) -> float | None:
    """The limit an ask is checked against: a hair above the policy's, so that float sums (ten
    reservations of 0.001 make 0.010000000000000002) do not refuse the request that fills it."""
    return None if ask.limit is None else ask.limit * (1 + 1e-9)


def settle_asks(asks: list[Ask], totals: list[float], apply) -> Reserved:
    """The reservation rule for stores that run it in Python: `totals` are the windows' current
    sums; `apply(ask)` adds one ask. Called with the store's lock (or transaction) held."""
    over = [(limit := limit_of(ask)) is not None and total + ask.amount > limit for ask, total in zip(asks, totals)]
    refused = next((i for i, (ask, o) in enumerate(zip(asks, over)) if o and not ask.soft), None)
    if refused is not None:
        return Reserved(refused, totals, over)
    for ask in asks:
        apply(ask)
    return Reserved(None, [t + ask.amount for ask, t in zip(asks, totals)], over)
