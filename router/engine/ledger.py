"""The spend ledger: one record per request, appended to the state store's `ledger` log.

A record: time, route, model, target and served group, identity, tokens by kind, cost at the
policy's prices and LiteLLM's, cache hit and saving, latency, outcome. Records written while the
store is down wait in memory and go out with the next write.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator

from router.state.protocol import StateStore, StoreUnavailable

LEDGER_LOG = "ledger"
MAX_RECORDS = 1_000_000


class Ledger:
    def __init__(self, store: StateStore):
        self.store = store
        self._backlog: deque[bytes] = deque()
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        with self._lock:
            self._backlog.append(json.dumps(record, separators=(",", ":")).encode())
            self._drain()

    def flush(self) -> None:
        """Write records kept while the store was down (called periodically)."""
        with self._lock:
            self._drain()

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def pending(self) -> list[str]:
        """The records the store has not taken, as JSON (kept across a restart by `spill`)."""
        with self._lock:
            return [raw.decode() for raw in self._backlog]

    def restore(self, pending: list[str]) -> None:
        with self._lock:
            self._backlog.extend(raw.encode() for raw in pending)

    def _drain(self) -> None:
        while self._backlog:
            try:
                self.store.append(LEDGER_LOG, self._backlog[0], MAX_RECORDS)
            except StoreUnavailable:
                return  # kept for the next write; the store logged the outage
            self._backlog.popleft()


def records(store: StateStore, since: float = 0.0, batch: int = 5000) -> Iterator[dict]:
    """Every record at or after `since` (epoch seconds), oldest first."""
    position = None
    while True:
        rows = store.read(LEDGER_LOG, position, batch)
        for _, raw in rows:
            record = json.loads(raw)
            if record.get("t", 0) >= since:
                yield record
        if len(rows) < batch:
            return
        position = rows[-1][0]
