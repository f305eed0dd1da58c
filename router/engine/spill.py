"""Spend and ledger records the state store could not take before the process ended (Redis down at
shutdown), kept in a file beside the state and handed back at the next start: never forgotten."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from router.engine.budget_book import BudgetBook
from router.engine.ledger import Ledger

log = logging.getLogger("router")


def directory(backend: str, path: str) -> Path | None:
    """Where a policy's state spills: `pending/` beside `state.path` (the SQLite file, or for Redis
    where such a file would be); none for the memory store, which keeps nothing anyway."""
    return None if backend == "memory" else Path(path).parent / "pending"


def save(where: Path | None, book: BudgetBook, ledger: Ledger) -> Path | None:
    """Write what the store has not taken; the file, or None when nothing was left."""
    spend, records = book.pending(), ledger.pending()
    if where is None or not (spend or records):
        return None
    where.mkdir(parents=True, exist_ok=True)
    target = where / f"{time.time():.6f}-{os.getpid()}.json"
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps({"spend": spend, "ledger": records}))
    partial.replace(target)  # whole or not at all: a reader never sees half a file
    return target


def restore(where: Path | None, book: BudgetBook, ledger: Ledger) -> int:
    """Take back every spilled file (the next flush writes it to the store); the files read."""
    files = sorted(where.glob("*.json")) if where is not None and where.is_dir() else []
    taken = 0
    for file in files:
        claimed = file.with_suffix(f".taken-{os.getpid()}")
        try:
            file.rename(claimed)  # instances starting together: only one takes each file
            saved = json.loads(claimed.read_text())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            log.error("pending state %s could not be read (%s); it is left for a person to look at", claimed, exc)
            continue
        book.restore(saved.get("spend", []))
        ledger.restore(saved.get("ledger", []))
        claimed.unlink()
        taken += 1
        log.info(
            "took back %d spend changes and %d ledger records kept in %s",
            len(saved.get("spend", [])),
            len(saved.get("ledger", [])),
            file,
        )
    return taken
