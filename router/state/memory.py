"""An in-process store: tests, single-process use that needs nothing to survive a restart, and the
replay of recorded traffic (its `clock` then reads the recorded times)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from router.state.protocol import Ask, Reserved, Settlement, Tallies, hold_key, hold_ttl, settle_asks


class MemoryStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._values: dict[str, tuple[bytes, float]] = {}
        self._numbers: dict[str, tuple[float, float]] = {}  # key -> (value, expires)
        self._groups: dict[str, tuple[dict[str, float], float]] = {}  # key -> (fields, expires)
        self._logs: dict[str, deque[tuple[int, bytes]]] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        item = self._values.get(key)
        if item is None or item[1] < self.clock():
            return None
        return item[0]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._values[key] = (value, self.clock() + ttl)

    def set_many(self, items: list[tuple[str, bytes, float]]) -> None:
        for key, value, ttl in items:
            self.set(key, value, ttl)

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self.get(key) for key in keys]

    def tally(self, counts: Tallies, ttl: float) -> None:
        with self._lock:
            self._tally(counts, ttl, self.clock())

    def _tally(self, counts: Tallies, ttl: float, now: float) -> None:
        for key, fields in counts.items():
            group, expires = self._groups.get(key, ({}, 0.0))
            group = dict(group) if expires > now else {}
            for field, amount in fields.items():
                group[field] = group.get(field, 0) + amount
            self._groups[key] = (group, now + ttl)

    def tallies(self, keys: list[str]) -> list[dict[str, float]]:
        now = self.clock()
        found = [self._groups.get(key, ({}, 0.0)) for key in keys]
        return [dict(group) if expires > now else {} for group, expires in found]

    def _number(self, key: str) -> float:
        value, expires = self._numbers.get(key, (0.0, 0.0))
        return value if expires > self.clock() else 0.0

    def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        with self._lock:
            return self._add(key, amount, ttl)

    def _add(self, key: str, amount: float, ttl: float | None) -> float:
        value = max(0.0, self._number(key) + amount)
        expires = self.clock() + ttl if ttl is not None else float("inf")
        self._numbers[key] = (value, expires)
        return value

    def reserve(self, asks: list[Ask], hold: str | None = None) -> Reserved:
        with self._lock:
            reserved = settle_asks(
                asks,
                [sum(self._number(k) for k in ask.keys) for ask in asks],
                lambda ask: self._add(ask.keys[-1], ask.amount, ask.ttl),
            )
            if hold is not None and reserved.refused is None:
                self.set(hold_key(hold), b"1", hold_ttl(asks))
            return reserved

    def settle(self, hold: str | None, changes: list[Settlement]) -> None:
        self.settle_many([(hold, changes)])

    def settle_many(self, batch: list[tuple[str | None, list[Settlement]]]) -> None:
        with self._lock:
            for hold, changes in batch:
                held = hold is not None and self.get(hold_key(hold)) is not None
                if hold is not None:
                    self._values.pop(hold_key(hold), None)
                for change in changes:
                    self._add(change.key, change.actual - (change.reserved if held else 0.0), change.ttl)

    def append(self, log: str, payload: bytes, max_len: int) -> str:
        return self.append_many(log, [payload], max_len)[0]

    def append_many(
        self, log: str, payloads: list[bytes], max_len: int, counts: Tallies | None = None, ttl: float = 0.0
    ) -> list[str]:
        with self._lock:
            if counts:
                self._tally(counts, ttl, self.clock())
            entries = self._logs.setdefault(log, deque(maxlen=max_len))
            ids = []
            for payload in payloads:
                self._next_id += 1
                entries.append((self._next_id, payload))
                ids.append(str(self._next_id))
            return ids

    def read(self, log: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        start = int(after) if after else 0
        with self._lock:
            found = [(str(i), p) for i, p in self._logs.get(log, ()) if i > start]
        return found[:limit]

    def close(self) -> None:
        pass
