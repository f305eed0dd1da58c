"""Budgets over real stores: reserve, settle, release; reject, downgrade, warn; concurrency across
instances that share a store; an outage that loses no spend."""

from __future__ import annotations

import threading
import time

import pytest

from router import CompiledPolicy, Identity, parse_policy
from router.core.budgets import Amounts
from router.engine.budget_book import BudgetBook
from router.state import open_store

POLICY = """\
version: 1
models:
  big: {target: big, context: 100k, price: {input: 10, output: 10}}
  mid: {target: mid, context: 100k, price: {input: 1, output: 1}}
  small: {target: small, context: 100k, price: {input: 0.1, output: 0.1}}
routes:
  - {name: strict, when: {any: [strict]}, use: big}
  - {name: ladder, when: {any: [ladder]}, use: big}
  - {name: soft, when: {any: [soft]}, use: big}
  - {name: default, use: small}
budgets:
  - {name: strict-key, per: key, window: day, limit_usd: 0.01, routes: [strict]}
  - {name: ladder-team, per: team, window: day, limit_usd: 0.01, on_exceed: downgrade, to: [mid, small],
     routes: [ladder]}
  - {name: soft-all, per: global, window: hour, limit_usd: 0.001, on_exceed: warn, routes: [soft]}
"""
ALICE, BOB = Identity(key_hash="alice", team="blue"), Identity(key_hash="bob", team="blue")
COMPILED = CompiledPolicy(parse_policy(POLICY, env={}))


def admit(book, route, who=ALICE, prompt=100, output=400):
    model = {"strict": "big", "ladder": "big", "soft": "big"}.get(route, "small")
    return book.admit(COMPILED, route, model, who, (), prompt, output)


def test_reserve_then_settle_to_the_real_cost(store):
    book = BudgetBook(store)
    first = admit(book, "strict")  # worst case (100 + 400) tokens at $10/M = $0.005
    assert first.rejected is None and first.reservation.holds[0].amount == pytest.approx(0.005)
    assert first.tightest == ("strict-key", "usd", pytest.approx(0.005))
    second = admit(book, "strict")
    assert second.rejected is None and second.tightest[2] == pytest.approx(0.0)
    third = admit(book, "strict")
    assert third.rejected is not None and third.rejected.spent == pytest.approx(0.01)
    book.settle(first.reservation, Amounts(0.001, 150, 0))  # the first call really cost $0.001: $0.006 now
    assert admit(book, "strict").rejected is not None  # $0.006 + $0.005 worst case is still too much
    book.settle(second.reservation, Amounts(0.001, 150, 0))  # $0.002
    assert admit(book, "strict").rejected is None


def test_a_book_that_writes_behind_holds_the_limit_until_its_settlements_are_written(store):
    book = BudgetBook(store, write_behind=True)
    first, second = admit(book, "strict"), admit(book, "strict")  # $0.005 worst case each: the limit is reached
    book.settle(first.reservation, Amounts(0.001, 150, 0))
    book.settle(second.reservation, Amounts(0.001, 150, 0))
    assert book.backlog == 2
    assert admit(book, "strict").rejected is not None  # not written yet: the worst cases still count
    book.flush()
    assert book.backlog == 0
    assert store.incr(f"budget:strict-key:usd:alice:{_bucket()}", 0) == pytest.approx(0.002)
    assert admit(book, "strict").rejected is None


def test_a_request_for_several_answers_reserves_output_for_each(store):
    book = BudgetBook(store)
    one = book.admit(COMPILED, "strict", "big", ALICE, (), 100, 200)  # (100 + 200) tokens at $10/M
    assert one.reservation.holds[0].amount == pytest.approx(0.003)
    book.release(one.reservation)
    three = book.admit(COMPILED, "strict", "big", ALICE, (), 100, 200, answers=3)  # the prompt once, 3 answers
    assert three.reservation.holds[0].amount == pytest.approx(0.007)
    assert book.admit(COMPILED, "strict", "big", ALICE, (), 100, 200, answers=3).rejected is not None  # $0.014 > $0.01


def test_a_failed_call_gives_its_reservation_back(store):
    book = BudgetBook(store)
    reservations = [admit(book, "strict").reservation, admit(book, "strict").reservation]
    assert admit(book, "strict").rejected is not None
    book.release(reservations[0])
    assert admit(book, "strict").rejected is None


def test_budgets_are_per_key(store):
    book = BudgetBook(store)
    admit(book, "strict", ALICE)
    admit(book, "strict", ALICE)
    assert admit(book, "strict", ALICE).rejected is not None
    assert admit(book, "strict", BOB).rejected is None


def test_the_counters_follow_the_clock_into_the_next_window_and_back(store):
    """A request's counters are worked out once a second: a request just after midnight draws on the
    new day's counter, and a clock that goes back (a replay) on the old day's again."""
    book = BudgetBook(store)
    midnight = 1_780_000_000 - 1_780_000_000 % 86400  # a UTC midnight

    def on(at):
        return book.admit(COMPILED, "strict", "big", ALICE, (), 100, 400, now=at)

    assert on(midnight - 0.5).rejected is None and on(midnight - 0.4).rejected is None
    assert on(midnight - 0.3).rejected is not None  # that day's limit is spent
    fresh = on(midnight + 0.1)
    assert fresh.rejected is None and fresh.reservation.holds[0].key.endswith(
        time.strftime("%Y%m%d00", time.gmtime(midnight))
    )
    assert on(midnight - 0.2).rejected is not None  # back before midnight: the spent day again


def test_downgrade_walks_the_ladder(store):
    book = BudgetBook(store)
    first = admit(book, "ladder")
    assert first.model == "big"
    book.settle(first.reservation, Amounts(0.004, 0, 0))
    assert admit(book, "ladder", BOB).model == "big"  # same team budget: $0.009 held now
    third = admit(book, "ladder")  # big would need $0.005 more; mid fits in the $0.001 left
    assert (third.model, third.downgraded_from) == ("mid", "big")
    served = [admit(book, "ladder") for _ in range(30)]
    assert {a.model for a in served if a.rejected is None} <= {"mid", "small"}
    assert served[-1].rejected is not None  # the ladder ends: rejected


def test_warn_budgets_admit_and_say_so(store):
    book = BudgetBook(store)
    assert admit(book, "soft").warnings == ["soft-all"]  # $0.005 worst case over a $0.001 limit
    assert admit(book, "soft").rejected is None


def test_rejection_details(store):
    book = BudgetBook(store)
    admit(book, "strict")
    admit(book, "strict")
    exceeded = admit(book, "strict").rejected
    assert exceeded.details()["budget"] == "strict-key" and exceeded.details()["limit"] == 0.01
    assert exceeded.reset_at > time.time() and "strict-key" in exceeded.message()


def test_sqlite_spend_survives_a_restart(tmp_path):
    path = str(tmp_path / "state.db")
    book = BudgetBook(open_store("sqlite", path=path))
    book.settle(admit(book, "strict").reservation, Amounts(0.009, 0, 0))
    restarted = BudgetBook(open_store("sqlite", path=path))
    assert admit(restarted, "strict").rejected is not None  # $0.009 spent + $0.005 worst case > $0.01


def hammer(books: list[BudgetBook], requests: int, real_cost: float) -> tuple[int, int]:
    """Many threads admitting and settling at once, spread over several books (instances)."""
    admitted = rejected = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal admitted, rejected
        book = books[i % len(books)]
        admission = book.admit(COMPILED, "strict", "big", ALICE, (), 100, 400)
        with lock:
            if admission.rejected is not None:
                rejected += 1
                return
            admitted += 1
        time.sleep(0.001)
        book.settle(admission.reservation, Amounts(real_cost, 0, 0))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return admitted, rejected


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_concurrent_instances_never_overrun(kind, tmp_path, request):
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        stores = [open_store("redis", url=url) for _ in range(2)]
    else:
        stores = [open_store("sqlite", path=str(tmp_path / "shared.db")) for _ in range(2)]  # two processes' view
    books = [BudgetBook(s) for s in stores]
    admitted, rejected = hammer(books, 200, real_cost=0.0004)
    total = stores[0].incr(f"budget:strict-key:usd:alice:{_bucket()}", 0)
    assert admitted + rejected == 200 and rejected > 0
    assert total == pytest.approx(admitted * 0.0004)
    assert total <= 0.01 + 0.005  # never past the limit by more than one reservation


def _bucket() -> str:
    from zoneinfo import ZoneInfo

    from router.core.budgets import window_span

    return window_span("day", time.time(), ZoneInfo("UTC")).buckets[-1]


def test_a_store_outage_admits_unchecked_and_keeps_the_spend(redis_server, redis_url):
    store = open_store("redis", url=redis_url)
    store.retry_after = 0.1
    book = BudgetBook(store)
    redis_server.stop()
    admission = admit(book, "strict")
    assert admission.unchecked and admission.rejected is None
    book.settle(admission.reservation, Amounts(0.004, 0, 0))
    assert book.backlog == 1
    redis_server.start()
    time.sleep(0.15)
    book.flush()
    assert book.backlog == 0
    assert store.incr(f"budget:strict-key:usd:alice:{_bucket()}", 0) == pytest.approx(0.004)


def test_a_model_outside_the_policy_cannot_escape_the_budgets(store):
    book = BudgetBook(store)
    unpriced = book.admit(COMPILED, "explicit", None, ALICE, (), 100, 400)
    assert unpriced.rejected is None and unpriced.reservation.holds == ()  # `strict-key` is for the strict route only
    everyone = CompiledPolicy(parse_policy(POLICY.replace(", routes: [strict]}", "}"), env={}))
    first = book.admit(everyone, "explicit", None, ALICE, (), 100, 400)
    assert first.rejected is None and [h.amount for h in first.reservation.holds] == [
        0.0
    ]  # no price: nothing reserved...
    book.settle(first.reservation, Amounts(0.02, 0, 0))  # ...but the spend, at LiteLLM's price, counts
    assert book.admit(everyone, "explicit", None, ALICE, (), 100, 400).rejected is not None


ESTIMATED = """\
version: 1
settings: {reserve_output: %s}
models:
  m: {target: m, context: 100k, price: {input: 0, output: 1}}
routes:
  - {name: default, use: m}
budgets:
  - {name: cap, per: global, window: day, limit_usd: 0.01}
"""


def burst_until_refused(book, compiled, max_tokens=1000) -> list:
    """Admit requests that all stay in flight until one is refused: their reservations."""
    held = []
    while True:
        admission = book.admit(compiled, "default", "m", ALICE, (), 0, max_tokens)
        if admission.rejected is not None:
            return held
        held.append(admission.reservation)


def test_the_estimate_needs_enough_history_and_stays_under_max_tokens():
    compiled = CompiledPolicy(parse_policy(ESTIMATED % "mean", env={}))
    book = BudgetBook(open_store("memory"))

    def reserved(max_tokens):
        return book.admit(compiled, "default", "m", ALICE, (), 0, max_tokens).reservation.holds[0].amount

    assert reserved(1000) == pytest.approx(0.001) and reserved(None) == pytest.approx(0.001024)  # default_output_tokens
    for _ in range(19):
        book.outputs.observe("default", "m", 100)
    assert reserved(1000) == pytest.approx(0.001)  # 19 answers are not enough to go by
    book.outputs.observe("default", "m", 100)
    assert reserved(1000) == pytest.approx(0.0001) and reserved(None) == pytest.approx(0.0001)
    assert reserved(40) == pytest.approx(0.00004)  # never more than the client allows


def with_history(store, reserve_output: str, answers: int):
    """A policy reserving by `reserve_output`, and a book that has seen `answers` answers of 100 tokens."""
    compiled = CompiledPolicy(parse_policy(ESTIMATED % reserve_output, env={}))
    book = BudgetBook(store)
    for _ in range(answers):
        book.outputs.observe("default", "m", 100)
    return compiled, book


def test_estimated_reservations_spend_the_limit_and_overrun_only_by_what_outruns_the_estimate(store):
    compiled, book = with_history(store, "mean", 20)
    held = burst_until_refused(book, compiled)
    assert len(held) == 100  # the recent answers' 100 tokens each: the whole limit is usable
    for reservation in held[:50]:  # answers like the recent ones
        book.settle(reservation, Amounts(0.0001, 100, 0))
    # The documented bound: requests in flight together pass the limit only by what they produce
    # beyond their estimate, at most max_tokens - estimate each. Here the other 50 run to max_tokens.
    for reservation in held[50:]:
        book.settle(reservation, Amounts(0.001, 1000, 0))
    spent = book.admit(compiled, "default", "m", ALICE, (), 0, 1).rejected.spent
    assert spent == pytest.approx(0.01 + 50 * (1000 - 100) * 1e-6)


def test_worst_case_reservations_never_pass_the_limit(store):
    compiled, book = with_history(store, "worst_case", 50)
    held = burst_until_refused(book, compiled)
    assert len(held) == 10
    for reservation in held:
        book.settle(reservation, Amounts(0.001, 1000, 0))  # every answer runs to max_tokens
    assert book.admit(compiled, "default", "m", ALICE, (), 0, 1).rejected.spent == pytest.approx(0.01)
