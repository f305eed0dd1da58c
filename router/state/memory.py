"""An in-process store: tests, and single-process use that needs nothing to survive a restart."""

from __future__ import annotations

import threading
import time
from collections import deque


class MemoryStore:
    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float]] = {}
        self._numbers: dict[str, tuple[float, float]] = {}  # key -> (value, expires)
        self._logs: dict[str, deque[tuple[int, bytes]]] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        item = self._values.get(key)
        if item is None or item[1] < time.time():
            return None
        return item[0]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._values[key] = (value, time.time() + ttl)

    def _number(self, key: str) -> float:
        value, expires = self._numbers.get(key, (0.0, 0.0))
        return value if expires > time.time() else 0.0

    def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        with self._lock:
            return self._add(key, amount, ttl)

    def _add(self, key: str, amount: float, ttl: float | None) -> float:
        value = self._number(key) + amount
        expires = time.time() + ttl if ttl is not None else float("inf")
        self._numbers[key] = (value, expires)
        return value

    def reserve(self, keys: list[str], amount: float, limit: float | None, ttl: float) -> tuple[bool, float]:
        with self._lock:
            total = sum(self._number(k) for k in keys)
            if limit is not None and total + amount > limit:
                return False, total
            self._add(keys[-1], amount, ttl)
            return True, total + amount

    def append(self, log: str, payload: bytes, max_len: int) -> str:
        with self._lock:
            self._next_id += 1
            entries = self._logs.setdefault(log, deque(maxlen=max_len))
            entries.append((self._next_id, payload))
            return str(self._next_id)

    def read(self, log: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        start = int(after) if after else 0
        with self._lock:
            found = [(str(i), p) for i, p in self._logs.get(log, ()) if i > start]
        return found[:limit]

    def close(self) -> None:
        pass
