"""A SQLite file: the embedded default. State survives a restart; processes on one host can share it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from router.state.protocol import Ask, Reserved, Settlement, Tallies, hold_key, hold_ttl, settle_asks

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS numbers (key TEXT PRIMARY KEY, value REAL NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tallies (key TEXT NOT NULL, field TEXT NOT NULL, value REAL NOT NULL, expires REAL NOT NULL,
                                    PRIMARY KEY (key, field));
CREATE INDEX IF NOT EXISTS log_name ON log (name, id);
"""
# Databases made before numbers expired: add the column.
_MIGRATIONS = ("ALTER TABLE numbers ADD COLUMN expires REAL",)
_PURGE_EVERY = 500  # writes between sweeps of expired keys
# An expired number counts as 0: the upsert restarts it rather than adding to it. No number goes
# below 0 (a settlement can take back more than a store that lost data holds).
_ADD = (
    "INSERT INTO numbers (key, value, expires) VALUES (?1, MAX(0, ?2), ?3) ON CONFLICT(key) DO UPDATE SET "
    "value = MAX(0, CASE WHEN expires IS NOT NULL AND expires < ?4 THEN ?2 ELSE value + ?2 END), "
    "expires = COALESCE(excluded.expires, expires)"
)


def _add_row(key: str, amount: float, ttl: float | None, now: float) -> tuple:
    return key, amount, None if ttl is None else now + ttl, now


class SQLiteStore:
    def __init__(self, path: str | Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection shared under a lock: calls are sub-millisecond, and WAL lets other
        # processes read while this one writes.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(numbers)")}
        if "expires" not in columns:
            for statement in _MIGRATIONS:
                self._db.execute(statement)
        self._lock = threading.Lock()
        self._writes = 0

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction under the lock: committed whole, or rolled back whole when any
        statement fails. BEGIN IMMEDIATE takes the file's write lock first, so processes sharing
        the file serialise here."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value, expires FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None or row[1] < time.time():
            return None
        return row[0]

    def set(self, key: str, value: bytes, ttl: float) -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)", (key, value, now + ttl)
            )
            self._writes += 1
            if self._writes % _PURGE_EVERY == 0:
                self._db.execute("DELETE FROM kv WHERE expires < ?", (now,))

    def set_many(self, items: list[tuple[str, bytes, float]]) -> None:
        now = time.time()
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                [(key, value, now + ttl) for key, value, ttl in items],
            )

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self.get(key) for key in keys]

    def tally(self, counts: Tallies, ttl: float) -> None:
        if not counts:
            return  # an idle instance's sync loop must not take the write lock twice a second
        with self._transaction():
            self._tally(counts, ttl, time.time())

    def _tally(self, counts: Tallies, ttl: float, now: float) -> None:
        rows = [
            (key, field, amount, now + ttl, now) for key, fields in counts.items() for field, amount in fields.items()
        ]
        # An expired group restarts at the new amount; every field of a group expires together.
        self._db.executemany(
            "INSERT INTO tallies (key, field, value, expires) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key, field) DO UPDATE "
            "SET value = CASE WHEN expires < ?5 THEN excluded.value ELSE value + excluded.value END, "
            "expires = excluded.expires",
            rows,
        )
        self._db.executemany("UPDATE tallies SET expires = ? WHERE key = ?", [(now + ttl, key) for key in counts])
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._db.execute("DELETE FROM tallies WHERE expires < ?", (now,))

    def tallies(self, keys: list[str]) -> list[dict[str, float]]:
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, field, value FROM tallies WHERE key IN ({marks}) AND expires >= ?", (*keys, time.time())
            ).fetchall()
        found: dict[str, dict[str, float]] = {}
        for key, field, value in rows:
            found.setdefault(key, {})[field] = value
        return [found.get(key, {}) for key in keys]

    def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        with self._lock:
            return self._add(key, amount, ttl, time.time())

    def _add(self, key: str, amount: float, ttl: float | None, now: float) -> float:
        return self._db.execute(_ADD + " RETURNING value", _add_row(key, amount, ttl, now)).fetchone()[0]

    def reserve(self, asks: list[Ask], hold: str | None = None) -> Reserved:
        now = time.time()
        adds: list[Ask] = []
        with self._transaction():
            reserved = settle_asks(asks, self._window_totals(asks, now), adds.append)
            self._db.executemany(_ADD, [_add_row(ask.keys[-1], ask.amount, ask.ttl, now) for ask in adds])
            if hold is not None and reserved.refused is None:
                self._db.execute(
                    "INSERT OR REPLACE INTO kv (key, value, expires) VALUES (?, ?, ?)",
                    (hold_key(hold), b"1", now + hold_ttl(asks)),
                )
            return reserved

    def settle(self, hold: str | None, changes: list[Settlement]) -> None:
        self.settle_many([(hold, changes)])

    def settle_many(self, batch: list[tuple[str | None, list[Settlement]]]) -> None:
        now = time.time()
        with self._transaction():
            for hold, changes in batch:
                row = (
                    None
                    if hold is None
                    else self._db.execute(
                        "DELETE FROM kv WHERE key = ? RETURNING expires", (hold_key(hold),)
                    ).fetchone()
                )
                held = row is not None and row[0] >= now
                self._db.executemany(
                    _ADD,
                    [_add_row(c.key, c.actual - (c.reserved if held else 0.0), c.ttl, now) for c in changes],
                )

    def _window_totals(self, asks: list[Ask], now: float) -> list[float]:
        """Each ask's window sum, read in one statement."""
        keys = list({key for ask in asks for key in ask.keys})
        if not keys:
            return [0.0 for _ in asks]
        marks = ",".join("?" * len(keys))
        values = dict(
            self._db.execute(
                f"SELECT key, value FROM numbers WHERE key IN ({marks}) AND (expires IS NULL OR expires >= ?)",
                (*keys, now),
            ).fetchall()
        )
        return [sum(values.get(key, 0.0) for key in ask.keys) for ask in asks]

    def append(self, log: str, payload: bytes, max_len: int) -> str:
        return self.append_many(log, [payload], max_len)[0]

    def append_many(
        self, log: str, payloads: list[bytes], max_len: int, counts: Tallies | None = None, ttl: float = 0.0
    ) -> list[str]:
        ids = []
        with self._transaction():
            if counts:
                self._tally(counts, ttl, time.time())
            for payload in payloads:
                entry_id = self._db.execute("INSERT INTO log (name, payload) VALUES (?, ?)", (log, payload)).lastrowid
                assert entry_id is not None  # an INSERT always has a row id
                if entry_id % 100 == 0:
                    self._db.execute("DELETE FROM log WHERE name = ? AND id <= ?", (log, entry_id - max_len))
                ids.append(str(entry_id))
        return ids

    def read(self, log: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, payload FROM log WHERE name = ? AND id > ? ORDER BY id LIMIT ?",
                (log, int(after or 0), limit),
            ).fetchall()
        return [(str(i), p) for i, p in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
