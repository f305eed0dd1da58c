"""Budget leases over real stores: requests drawn on a lease cost no store round trip, the lease goes
back as the real spend, limits hold across instances, and outages, lost store data, policy reloads
and shutdowns lose no spend."""

from __future__ import annotations

import threading
import time

import pytest

from router import CompiledPolicy, Identity, parse_policy
from router.core.budgets import Amounts
from router.engine.budget_book import BudgetBook
from router.engine.leases import IDLE, STALE
from router.state import open_store

# Each request reserves $0.001 (1000 output tokens at $1/M); a lease is 10 % of a limit plus the
# request that takes it: $0.011 of `cap` (eleven requests), $0.101 of `all`.
POLICY = """\
version: 1
settings: {budget_lease: 0.1, reserve_output: worst_case}
models:
  m: {target: m, context: 100k, price: {input: 0, output: 1}}
routes:
  - {name: default, use: m}
budgets:
  - {name: cap, per: key, window: day, limit_usd: %s}
  - {name: all, per: global, window: day, limit_usd: 1, on_exceed: warn}
"""
ALICE = Identity(key_hash="alice")
LEASED = CompiledPolicy(parse_policy(POLICY % "0.1", env={}))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def admit(book, compiled=LEASED, who=ALICE, now=None):
    return book.admit(compiled, "default", "m", who, (), 0, 1000, now=now)


def counter(store, budget="cap", scope="alice") -> float:
    from zoneinfo import ZoneInfo

    from router.core.budgets import window_span

    bucket = window_span("day", time.time(), ZoneInfo("UTC")).buckets[-1]
    return store.incr(f"budget:{budget}:usd:{scope}:{bucket}", 0)


def test_requests_draw_on_a_lease_and_it_goes_back_as_their_real_spend(store):
    book = BudgetBook(store)
    first = admit(book)
    assert first.rejected is None and all(h.lease for h in first.reservation.holds)
    assert counter(store) == pytest.approx(0.011) and counter(store, "all", "all") == pytest.approx(0.101)
    rest = [admit(book) for _ in range(10)]  # the lease holds eleven requests: the store is not touched
    assert counter(store) == pytest.approx(0.011) and all(h.lease for a in rest for h in a.reservation.holds)
    assert first.tightest == ("cap", "usd", pytest.approx(0.099))  # what was drawn counts, not the grant
    assert rest[-1].tightest == ("cap", "usd", pytest.approx(0.089))
    for admission in (first, *rest):
        book.settle(admission.reservation, Amounts(0.0002, 0, 0))
    assert counter(store) == pytest.approx(0.011)  # still lent out: the store counts the grant
    book.retire()
    book.flush()
    assert counter(store) == pytest.approx(0.0022) and counter(store, "all", "all") == pytest.approx(0.0022)


def test_a_spent_lease_is_followed_by_a_new_one_and_goes_back_when_its_requests_settle(store):
    book = BudgetBook(store)
    held = [admit(book) for _ in range(12)]  # the twelfth does not fit the first lease of `cap`
    assert held[11].reservation.holds[0].lease != held[0].reservation.holds[0].lease
    assert counter(store) == pytest.approx(0.022)
    for admission in held[:11]:
        book.settle(admission.reservation, Amounts(0.0005, 0, 0))
    book.flush()  # the first lease went back with its last settlement: $0.0055 for it, $0.011 lent out
    assert counter(store) == pytest.approx(0.0165)


def test_an_idle_lease_goes_back_by_itself(store):
    clock = Clock()
    book = BudgetBook(store, clock=clock)
    book.settle(admit(book, now=clock.now).reservation, Amounts(0.0003, 0, 0))
    book.flush()
    assert counter(store) == pytest.approx(0.011)
    clock.now += IDLE
    book.flush()
    assert counter(store) == pytest.approx(0.0003)


def test_near_the_limit_requests_are_reserved_one_by_one_and_the_limit_is_met_exactly(store):
    compiled = CompiledPolicy(parse_policy(POLICY % "0.1", env={}))
    book = BudgetBook(store)
    held = []
    while (admission := admit(book, compiled)).rejected is None:
        held.append(admission)
    # Nine leases of eleven requests, then the store has no room for a tenth: the last request is
    # reserved alone, up to the limit, as without leases.
    assert len(held) == 100
    assert not any(h.lease for h in held[-1].reservation.holds if h.budget == "cap")
    assert admission.rejected.budget.name == "cap" and counter(store) <= 0.1 * (1 + 1e-9)


def test_a_small_limit_is_never_leased(store):
    book = BudgetBook(store)
    small = CompiledPolicy(parse_policy(POLICY % "0.05", env={}))  # a lease would hold five requests
    admission = admit(book, small)
    assert [bool(h.lease) for h in admission.reservation.holds] == [False, True]
    assert counter(store) == pytest.approx(0.001)


def test_a_refused_request_gives_its_draws_back(store):
    book = BudgetBook(store)
    tight = CompiledPolicy(parse_policy(POLICY % "0.001", env={}))
    assert admit(book, tight).rejected is None  # `cap` reserved exactly, `all` on a lease
    refused = admit(book, tight)
    assert refused.rejected is not None
    book.retire()
    book.flush()
    assert counter(store, "all", "all") == pytest.approx(0.001)  # one request drawn, not two


def test_a_reloaded_policy_takes_new_leases_under_its_own_limits(store):
    book = BudgetBook(store)
    first = admit(book)
    book.settle(first.reservation, Amounts(0.0002, 0, 0))
    reloaded = CompiledPolicy(parse_policy(POLICY % "0.2", env={}))
    second = admit(book, reloaded)
    assert second.reservation.holds[0].lease != first.reservation.holds[0].lease
    book.flush()  # the old lease went back as what was drawn on it: $0.0002 + the new $0.021
    assert counter(store) == pytest.approx(0.0212)


def test_a_lease_given_back_at_shutdown_counts_open_requests_until_they_settle(store):
    book = BudgetBook(store)
    done, running = admit(book), admit(book)
    book.settle(done.reservation, Amounts(0.0002, 0, 0))
    book.retire()
    book.flush()
    assert counter(store) == pytest.approx(0.0012)  # the running request at its reservation
    book.settle(running.reservation, Amounts(0.0004, 0, 0))
    book.flush()
    assert counter(store) == pytest.approx(0.0006)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_concurrent_instances_with_leases_never_overrun(kind, tmp_path, request):
    if kind == "redis":
        stores = [open_store("redis", url=request.getfixturevalue("redis_url")) for _ in range(2)]
    else:
        stores = [open_store("sqlite", path=str(tmp_path / "shared.db")) for _ in range(2)]
    books = [BudgetBook(s) for s in stores]
    admitted, lock = [], threading.Lock()

    def one(i: int) -> None:
        admission = admit(books[i % 2])
        if admission.rejected is None:
            with lock:
                admitted.append(admission)
            time.sleep(0.001)
            books[i % 2].settle(admission.reservation, Amounts(0.0004, 0, 0))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(400)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for book in books:
        book.retire()
        book.flush()
    total = counter(stores[0])
    assert 0 < len(admitted) < 400
    assert total == pytest.approx(len(admitted) * 0.0004) and total <= 0.1 * (1 + 1e-9)


def test_an_outage_draws_on_the_lease_checked_then_admits_unchecked_and_keeps_the_spend(redis_server, redis_url):
    store = open_store("redis", url=redis_url)
    store.retry_after = 0.1
    book = BudgetBook(store)
    first = admit(book)
    redis_server.stop()
    during = [admit(book) for _ in range(11)]
    assert [a.unchecked for a in during] == [False] * 10 + [True]  # ten more fit the lease of `cap`
    for admission in (first, *during):
        book.settle(admission.reservation, Amounts(0.0002, 0, 0))
    redis_server.start()
    time.sleep(0.15)
    book.retire()
    book.flush()
    assert book.backlog == 0
    assert counter(store) == pytest.approx(12 * 0.0002)  # the restarted store had lost the lease


def test_a_store_that_lost_its_data_gets_the_drawn_spend(redis_server, redis_url):
    store = open_store("redis", url=redis_url)
    book = BudgetBook(store)
    admissions = [admit(book) for _ in range(3)]
    redis_server.stop()
    redis_server.start()  # empty: no counters, no record of the lease
    time.sleep(0.15)
    for admission in admissions:
        book.settle(admission.reservation, Amounts(0.0003, 0, 0))
    book.retire()
    book.flush()
    assert counter(store) == pytest.approx(0.0009)


def test_a_warning_budget_warns_from_the_request_that_passes_its_limit(store):
    compiled = CompiledPolicy(
        parse_policy(POLICY.replace("limit_usd: 1, on_exceed: warn", "limit_usd: 0.1, on_exceed: warn") % "1", env={})
    )
    book = BudgetBook(store)
    warned = [bool(admit(book, compiled).warnings) for _ in range(120)]  # none settled: $0.001 each
    assert warned == [False] * 100 + [True] * 20
    assert counter(store, "all", "all") > 0.1  # a warning budget's leases may pass its limit


def test_a_lease_whose_request_never_ends_goes_back_in_the_end(store):
    clock = Clock()
    book = BudgetBook(store, clock=clock)
    lost = admit(book, now=clock.now)  # its end is never reported
    clock.now += IDLE
    book.flush()
    assert counter(store) == pytest.approx(0.011)  # closed, but a request is still open
    clock.now += STALE
    book.flush()
    assert counter(store) == pytest.approx(0.001)  # back, the open request at its reservation
    book.settle(lost.reservation, Amounts(0.0004, 0, 0))  # reported after all
    book.flush()
    assert counter(store) == pytest.approx(0.0004)
