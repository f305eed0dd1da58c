"""Raw ledger records on disk, beyond the newest the state store keeps: JSON lines files, one per
UTC day and process (`ledger-2026-12-03-<host>-<pid>.jsonl`), so processes and instances never
write to one file; files older than the retention are deleted, at most once an hour."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

log = logging.getLogger("router.ledger")
_PRUNE_EVERY = 3600.0


class RecordSink:
    def __init__(self, directory: str | Path, retention: float, instance: str | None = None):
        self.directory = Path(directory)
        self.retention = retention
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self._pruned = 0.0

    def write(self, records: Iterable[tuple[bytes, dict]]) -> None:
        """Append records (their JSON and their fields) to their days' files; raises OSError."""
        days: dict[str, list[bytes]] = {}
        for raw, record in records:
            days.setdefault(_day(record.get("t", 0.0)), []).append(raw)
        if not days:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for day, lines in days.items():
            with open(self.directory / f"ledger-{day}-{self.instance}.jsonl", "ab") as out:
                out.write(b"\n".join(lines) + b"\n")
        now = time.time()
        if now - self._pruned >= _PRUNE_EVERY:
            self._pruned = now
            self.prune(now)

    def prune(self, now: float) -> None:
        oldest = _day(now - self.retention)
        for path in self.directory.glob("ledger-*.jsonl"):
            if path.name[len("ledger-") : len("ledger-") + 10] < oldest:
                path.unlink(missing_ok=True)
                log.info("ledger: %s is older than the retention (%g days): deleted", path, self.retention / 86400)


def read_records(directory: str | Path, since: float = 0.0) -> Iterator[dict]:
    """Every record at or after `since` in a sink's files, a day at a time (within a day, by file)."""
    first = _day(since)
    for path in sorted(Path(directory).glob("ledger-*.jsonl")):
        if path.name[len("ledger-") : len("ledger-") + 10] < first:
            continue
        with open(path, "rb") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    record = orjson.loads(line) if line.strip() else None
                except orjson.JSONDecodeError:
                    log.warning("ledger: %s:%d is not a record (a write cut off?): skipped", path, number)
                    continue
                if record is not None and record.get("t", 0.0) >= since:
                    yield record


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")
