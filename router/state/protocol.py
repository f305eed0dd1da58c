"""The state store: a handful of primitives every backend (memory, SQLite, Redis) provides.

Calls are synchronous; async callers run them in a worker thread. Values are bytes; keys are
plain strings that the callers namespace (`cache:...`, `stats:...`).
"""

from __future__ import annotations

from typing import Protocol


class StoreUnavailable(Exception):
    """The shared store cannot be reached; callers degrade instead of failing the request."""


class StateStore(Protocol):
    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store `value` for `ttl` seconds."""

    def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        """Add `amount` to a number (0 when absent) atomically, keeping it `ttl` seconds more when
        given (forever otherwise); return the new value."""

    def reserve(self, keys: list[str], amount: float, limit: float | None, ttl: float) -> tuple[bool, float]:
        """Atomically: when the numbers at `keys` plus `amount` stay within `limit` (None: no limit),
        add `amount` to the last key (kept `ttl` seconds) and return (True, new total); else change
        nothing and return (False, current total). Budgets use it so concurrent requests cannot
        overrun a limit between a check and an add."""

    def append(self, log: str, payload: bytes, max_len: int) -> str:
        """Append to a log that keeps about its `max_len` newest entries; return the entry id."""

    def read(self, log: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        """Entries after id `after` (from the oldest kept when None), oldest first."""

    def close(self) -> None: ...
