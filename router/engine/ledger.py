"""The spend ledger: one record per request, appended to the state store's `ledger` log.

A record: time, route, model, target and served group, identity, tokens by kind, cost at the
policy's prices and LiteLLM's, cache hit and saving, latency, outcome. Records written while the
store is down wait in memory and go out with the next write; a ledger that writes behind holds them
for the next flush, which sends them in one step.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from itertools import islice

import orjson

from router.state.protocol import WRITE_BATCH, StateStore, StoreUnavailable

LEDGER_LOG = "ledger"
MAX_RECORDS = 1_000_000


class Ledger:
    def __init__(self, store: StateStore, write_behind: bool = False):
        self.store = store
        self.write_behind = write_behind  # records wait for `flush`, which writes them in one step
        self._backlog: deque[bytes] = deque()
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        with self._lock:
            self._backlog.append(orjson.dumps(record))
            if not self.write_behind:
                self._drain(len(self._backlog))

    def flush(self, most: int | None = None) -> None:
        """Write the records held back (the `most` oldest, when given): by an outage, or to go out
        together (called periodically)."""
        with self._lock:
            self._drain(len(self._backlog) if most is None else most)

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

    def _drain(self, most: int) -> None:
        while most > 0 and self._backlog:
            batch = list(islice(self._backlog, min(most, WRITE_BATCH)))
            try:
                self.store.append_many(LEDGER_LOG, batch, MAX_RECORDS)
            except StoreUnavailable:
                return  # kept for the next write; the store logged the outage
            for _ in batch:
                self._backlog.popleft()
            most -= len(batch)


def records(store: StateStore, since: float = 0.0, batch: int = 5000) -> Iterator[dict]:
    """Every record at or after `since` (epoch seconds), oldest first."""
    position = None
    while True:
        rows = store.read(LEDGER_LOG, position, batch)
        for _, raw in rows:
            record = orjson.loads(raw)
            if record.get("t", 0) >= since:
                yield record
        if len(rows) < batch:
            return
        position = rows[-1][0]
