"""State behind a small protocol, with memory, SQLite and Redis backends."""

from __future__ import annotations

from router.state.protocol import StateStore, StoreUnavailable


def open_store(backend: str, path: str = "", url: str = "") -> StateStore:
    """The store a policy's `state` section names."""
    if backend == "memory":
        from router.state.memory import MemoryStore

        return MemoryStore()
    if backend == "sqlite":
        from router.state.sqlite import SQLiteStore

        return SQLiteStore(path)
    if backend == "redis":
        from router.state.redis import RedisStore

        return RedisStore(url)
    raise ValueError(f"unknown state backend {backend!r}")


__all__ = ["StateStore", "StoreUnavailable", "open_store"]
