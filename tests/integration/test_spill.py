"""Spend and ledger records the store could not take before the end are kept in a file and taken back once."""

from __future__ import annotations

from router.core.budgets import Amounts
from router.engine import spill
from router.engine.budget_book import BudgetBook
from router.engine.ledger import Ledger, records
from router.engine.reservation import Hold, Reservation
from router.state import StoreUnavailable, open_store


class Down:
    """A store that cannot be reached."""

    def settle_many(self, batch):
        raise StoreUnavailable("down")

    def append_many(self, log, payloads, max_len, counts=None, ttl=0.0):
        raise StoreUnavailable("down")


def test_what_the_store_missed_is_kept_and_taken_back_once(tmp_path):
    book, ledger = BudgetBook(Down()), Ledger(Down())
    book.settle(Reservation("h1", (Hold("budget:b:usd:all:d1", "usd", 0.5, 60),)), Amounts(0.2, 10, 0))
    ledger.write({"t": 1.0, "outcome": "ok"})
    where = spill.directory("redis", str(tmp_path / "state.db"))
    kept = spill.save(where, book, ledger)
    assert kept is not None and kept.parent == tmp_path / "pending"

    store = open_store("sqlite", path=str(tmp_path / "state.db"))  # the store the next start finds (empty)
    again, again_ledger = BudgetBook(store), Ledger(store)
    assert spill.restore(where, again, again_ledger) == 1
    again.flush()
    again_ledger.flush()
    assert store.incr("budget:b:usd:all:d1", 0) == 0.2  # the reservation's record was lost with Redis: the real cost
    assert list(records(store)) == [{"t": 1.0, "outcome": "ok"}]
    assert spill.restore(where, BudgetBook(store), Ledger(store)) == 0  # taken once
    assert spill.save(where, again, again_ledger) is None  # nothing left to keep
    assert spill.directory("memory", "x/state.db") is None


def test_a_ledger_that_writes_behind_writes_only_when_flushed_and_the_oldest_first(tmp_path):
    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    ledger = Ledger(store, write_behind=True)
    for n in range(3):
        ledger.write({"t": float(n), "outcome": "ok"})
    assert ledger.backlog == 3 and list(records(store)) == []
    ledger.flush(2)  # the writer's step: only the records waiting before the spend it wrote
    assert [r["t"] for r in records(store)] == [0.0, 1.0] and ledger.backlog == 1
    ledger.flush()
    assert [r["t"] for r in records(store)] == [0.0, 1.0, 2.0] and ledger.backlog == 0
