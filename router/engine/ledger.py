"""The spend ledger: one record per request, appended to the state store's `ledger` log with the
hourly rollups it adds (router.engine.rollups), in one step; and to the raw-record sink on disk
(router.engine.sink), when there is one.

A record: time, route, model, target and served group, identity, tokens by kind, cost at the
policy's prices and LiteLLM's, cache hit and saving, latency, outcome, and the budgets it counted
for; and when the policy captures, the request itself (in the sink's copy only). The store keeps
the newest MAX_RECORDS records (for `status` and tools that tail it); totals come from the rollups,
and every record from the sink. Records written while the store is down wait in memory and go out
with the next write; a ledger that writes behind holds them for the next flush, which sends them in
one step.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from itertools import islice

import orjson

from router.engine import rollups
from router.engine.sink import RecordSink
from router.state.protocol import WRITE_BATCH, StateStore, StoreUnavailable

LEDGER_LOG = "ledger"
CAPTURED = "request"  # a record's captured request: body and sender
MAX_RECORDS = 1_000_000
ROLLUP_TTL = 35 * 86400.0
log = logging.getLogger("router.ledger")


class Ledger:
    def __init__(
        self,
        store: StateStore,
        write_behind: bool = False,
        rollup_ttl: float = ROLLUP_TTL,
        sink: RecordSink | None = None,
        max_records: int = MAX_RECORDS,
        observe: Callable[[list[dict]], None] | None = None,
    ):
        """`observe`: called with the records written since its last call, at each flush (metrics)."""
        self.store = store
        self.write_behind = write_behind  # records wait for `flush`, which writes them in one step
        self.rollup_ttl = rollup_ttl
        self.sink = sink
        self.max_records = max_records
        # Records as written: made JSON when they go out, by the writer, not on the request path.
        self._backlog: deque[dict] = deque()
        self._unsunk: list[dict] = []  # records the sink has not taken yet
        self.observe = observe
        self._unobserved: list[dict] = []
        self._lock = threading.Lock()

    def write(self, record: dict) -> None:
        """Take a record, which nobody changes afterwards."""
        with self._lock:
            self._backlog.append(record)
            if self.sink is not None:
                self._unsunk.append(record)
            if self.observe is not None:
                self._unobserved.append(record)
            if not self.write_behind:
                self._drain(len(self._backlog))

    def flush(self, most: int | None = None) -> None:
        """Write the records held back (the `most` oldest, when given): by an outage, or to go out
        together (called periodically)."""
        with self._lock:
            unsunk, self._unsunk = self._unsunk, []
            fresh, self._unobserved = self._unobserved, []
            self._drain(len(self._backlog) if most is None else most)
        self._sink(unsunk)  # outside the lock: a slow disk must not hold up the requests' writes
        if fresh and self.observe is not None:
            self.observe(fresh)

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def pending(self) -> list[str]:
        """The records the store has not taken, as JSON (kept across a restart by `spill`)."""
        with self._lock:
            unsunk, self._unsunk = self._unsunk, []
        self._sink(unsunk)
        with self._lock:
            return [_stored(record).decode() for record in self._backlog]

    def restore(self, pending: list[str]) -> None:
        with self._lock:
            self._backlog.extend(orjson.loads(raw) for raw in pending)

    def _sink(self, entries: list[dict]) -> None:
        if self.sink is None or not entries:
            return
        try:
            self.sink.write((orjson.dumps(record), record) for record in entries)
        except OSError as exc:
            log.error("ledger: cannot write raw records to %s: %s", self.sink.directory, exc)
            with self._lock:
                self._unsunk[:0] = entries  # first in line for the next flush

    def _drain(self, most: int) -> None:
        while most > 0 and self._backlog:
            batch = list(islice(self._backlog, min(most, WRITE_BATCH)))
            counts = rollups.counts(batch)
            try:
                self.store.append_many(
                    LEDGER_LOG, [_stored(r) for r in batch], self.max_records, counts, self.rollup_ttl
                )
            except StoreUnavailable:
                return  # kept for the next write; the store logged the outage
            for _ in batch:
                self._backlog.popleft()
            most -= len(batch)


def _stored(record: dict) -> bytes:
    """The store's copy of a record. A captured request (router.engine.capture) goes to the files on
    disk only: prompts must not fill the state store, nor reach every tool that reads its log."""
    return orjson.dumps({k: v for k, v in record.items() if k != CAPTURED} if CAPTURED in record else record)


def records(store: StateStore, since: float = 0.0, batch: int = 5000) -> Iterator[dict]:
    """Every record at or after `since` (epoch seconds) the store still keeps, oldest first."""
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
