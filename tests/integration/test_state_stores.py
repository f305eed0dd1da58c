"""The three state stores behave alike; SQLite survives a restart; Redis fails fast and recovers."""

from __future__ import annotations

import time

import pytest

from router.state import StoreUnavailable, open_store
from router.state.protocol import Ask, Settlement


def test_get_set_with_ttl(store):
    assert store.get("a") is None
    store.set("a", b"one", ttl=60)
    assert store.get("a") == b"one"
    store.set("short", b"x", ttl=0.05)
    time.sleep(0.1)
    assert store.get("short") is None


def test_set_many_writes_each_with_its_ttl(store):
    store.set_many([("a", b"one", 60), ("b", b"two", 0.05), ("a2", b"three", 60)])
    store.set_many([])
    time.sleep(0.1)
    assert store.get_many(["a", "b", "a2"]) == [b"one", None, b"three"]


def test_incr_is_cumulative(store):
    assert store.incr("n", 1.5) == 1.5
    assert store.incr("n", 2) == 3.5


def test_log_append_and_read_in_order(store):
    ids = [store.append("log", f"e{i}".encode(), max_len=1000) for i in range(5)]
    rows = store.read("log", None, 10)
    assert [p for _, p in rows] == [b"e0", b"e1", b"e2", b"e3", b"e4"]
    assert [p for _, p in store.read("log", ids[2], 10)] == [b"e3", b"e4"]
    assert [p for _, p in store.read("log", None, 2)] == [b"e0", b"e1"]
    assert store.read("other", None, 10) == []


def test_sqlite_state_survives_a_restart(tmp_path):
    path = str(tmp_path / "state.db")
    first = open_store("sqlite", path=path)
    first.set("k", b"v", ttl=60)
    first.incr("spend", 0.25)
    first.append("log", b"entry", max_len=10)
    first.close()
    second = open_store("sqlite", path=path)
    assert second.get("k") == b"v"
    assert second.incr("spend", 0) == 0.25
    assert [p for _, p in second.read("log", None, 10)] == [b"entry"]


def test_redis_outage_fails_fast_and_recovers(redis_server, redis_url, caplog):
    store = open_store("redis", url=redis_url)
    store.retry_after = 0.2
    store.set("k", b"v", ttl=60)
    redis_server.stop()
    with pytest.raises(StoreUnavailable):
        store.get("k")
    start = time.monotonic()
    for _ in range(50):  # within the retry window calls do not touch the network
        with pytest.raises(StoreUnavailable):
            store.get("k")
    assert time.monotonic() - start < 0.2
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1  # one line per outage
    redis_server.start()
    time.sleep(0.25)
    store.set("k", b"back", ttl=60)
    assert store.get("k") == b"back"
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_a_call_that_began_before_an_outage_does_not_end_it(redis_server, redis_url, caplog):
    """Calls overlap (the event loop's worker threads, the sync loop): one whose reply arrived just
    before Redis went down must not report Redis reachable after another call found it down."""
    store = open_store("redis", url=redis_url)
    store.retry_after = 0.0  # every call tries the network: only a real answer may end the outage

    def answered_then_redis_died(client):
        reply = client.ping()  # this call's answer is in ...
        redis_server.stop()  # ... then Redis dies, and another caller finds it down
        with pytest.raises(StoreUnavailable):
            store.get("k")
        return reply

    store._call(answered_then_redis_died)
    with pytest.raises(StoreUnavailable):
        store.get("k")
    messages = [r.getMessage() for r in caplog.records]
    assert not any("reachable again" in m for m in messages), messages
    assert sum("unreachable" in m for m in messages) == 1
    redis_server.start()
    assert store.get("k") is None
    assert "reachable again" in caplog.records[-1].getMessage()


def test_reserve_is_all_or_nothing(store):
    a, b = Ask(("a:1", "a:2"), 3.0, 5.0, 60), Ask(("b:1",), 1.0, 10.0, 60)
    first = store.reserve([a, b])
    assert first.refused is None and first.totals == [3.0, 1.0] and first.over == [False, False]
    second = store.reserve([b, a])  # a would reach 6 > 5: nothing is added, b included
    assert second.refused == 1 and second.totals == [1.0, 3.0]
    assert store.reserve([Ask(("b:1",), 0.0, None, 60)]).totals == [1.0]
    store.settle(None, [Settlement("a:1", 0.0, 1.0, 60)])  # an older bucket of a's window counts too
    assert store.reserve([Ask(("a:1", "a:2"), 1.5, 5.0, 60)]).refused == 0


def test_settle_turns_a_recorded_reservation_into_the_real_spend(store):
    assert store.reserve([Ask(("spend",), 5.0, 10.0, 60)], hold="h1").totals == [5.0]
    store.settle("h1", [Settlement("spend", 5.0, 2.0, 60)])
    assert store.incr("spend", 0) == 2.0
    # Settled again (a retry after a lost reply): the record is gone, so the real cost is added and
    # the reservation is not taken back a second time: an over-count, never an under-count.
    store.settle("h1", [Settlement("spend", 5.0, 2.0, 60)])
    assert store.incr("spend", 0) == 4.0


def test_settle_without_the_record_adds_the_real_cost_and_never_goes_below_zero(store):
    """A store that lost its data (Redis restarted empty) no longer holds the reservation."""
    store.settle("never-recorded", [Settlement("spend", 5.0, 2.0, 60)])
    assert store.incr("spend", 0) == 2.0
    store.reserve([Ask(("elsewhere",), 5.0, None, 60)], hold="h2")
    store.settle("h2", [Settlement("lost-counter", 5.0, 2.0, 60)])  # the record survived, its counter did not
    assert store.incr("lost-counter", 0) == 0.0
    assert store.reserve([Ask(("spend",), 1.0, 10.0, 60)]).refused is None  # no other hold recorded: nothing to settle


def test_settle_many_settles_each_reservation_as_settle_would(store):
    store.reserve([Ask(("spend",), 5.0, 10.0, 60)], hold="h1")
    store.reserve([Ask(("spend",), 3.0, 10.0, 60)], hold="h2")
    store.settle_many(
        [
            ("h1", [Settlement("spend", 5.0, 1.0, 60)]),
            ("h2", [Settlement("spend", 3.0, 0.5, 60)]),
            ("h1", [Settlement("spend", 5.0, 1.0, 60)]),  # h1 again: its record is gone, the real cost is added
            (None, [Settlement("other", 0.0, 2.0, 60)]),
        ]
    )
    assert store.incr("spend", 0) == 2.5 and store.incr("other", 0) == 2.0


def test_append_many_keeps_the_order_and_returns_the_ids(store):
    first = store.append("log", b"e0", max_len=1000)
    ids = store.append_many("log", [b"e1", b"e2", b"e3"], max_len=1000)
    rows = store.read("log", first, 10)
    assert [p for _, p in rows] == [b"e1", b"e2", b"e3"] and [i for i, _ in rows] == ids


def test_append_many_tallies_its_counts_in_the_same_step(store):
    """The ledger's rollups go with its records: both or neither."""
    store.append_many("log", [b"r1", b"r2"], max_len=1000, counts={"hour:1": {"n": 2, "usd": 0.5}}, ttl=60)
    store.append_many("log", [b"r3"], max_len=1000, counts={"hour:1": {"n": 1}, "hour:2": {"n": 1}}, ttl=60)
    assert [p for _, p in store.read("log", None, 10)] == [b"r1", b"r2", b"r3"]
    assert store.tallies(["hour:1", "hour:2"]) == [{"n": 3, "usd": 0.5}, {"n": 1}]


def test_a_refused_reservation_records_nothing(store):
    store.reserve([Ask(("spend",), 9.0, 10.0, 60)], hold="ok")
    assert store.reserve([Ask(("spend",), 5.0, 10.0, 60)], hold="refused").refused == 0
    store.settle("refused", [Settlement("spend", 5.0, 0.0, 60)])  # released by a confused caller: nothing taken back
    assert store.incr("spend", 0) == 9.0


def test_a_soft_ask_is_added_over_its_limit_and_says_so(store):
    result = store.reserve([Ask(("w",), 2.0, 1.0, 60, soft=True)])
    assert result.refused is None and result.over == [True] and result.totals == [2.0]


def test_tallies_add_fields_and_expire_together(store):
    store.tally({"win:a:1": {"n": 2, "l10": 1}, "win:b:1": {"n": 1}}, ttl=60)
    store.tally({"win:a:1": {"n": 3, "e": 1}}, ttl=60)
    assert store.tallies(["win:a:1", "win:b:1", "win:none"]) == [{"n": 5, "l10": 1, "e": 1}, {"n": 1}, {}]
    store.tally({"short": {"n": 1}}, ttl=0.05)
    time.sleep(0.1)
    assert store.tallies(["short"]) == [{}]
    store.tally({"short": {"n": 4}}, ttl=60)  # an expired group starts again from nothing
    assert store.tallies(["short"]) == [{"n": 4}]


def test_get_many(store):
    store.set("k1", b"one", ttl=60)
    assert store.get_many(["k1", "k2"]) == [b"one", None]
    assert store.get_many([]) == []


def test_sqlite_write_that_fails_half_way_leaves_nothing_behind(tmp_path):
    """A transaction that fails part-way is rolled back, not committed with half its changes."""
    import sqlite3

    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    with pytest.raises(TypeError):  # the second change cannot be computed
        store.settle(None, [Settlement("spend:a", 0.0, 1.0, 60), Settlement("spend:b", 0.0, None, 60)])
    with pytest.raises(sqlite3.IntegrityError):
        store.tally({"win:g": {"n": 1, "bad": None}}, ttl=60)
    with pytest.raises(sqlite3.IntegrityError):  # records and their rollups: neither is kept
        store.append_many("log", [b"r1"], max_len=10, counts={"win:h": {"n": 1, "bad": None}}, ttl=60)
    assert store.read("log", None, 10) == [] and store.tallies(["win:h"]) == [{}]
    assert store.incr("spend:a", 0) == 0
    assert store.tallies(["win:g"]) == [{}]
    store.settle(None, [Settlement("spend:a", 0.0, 1.0, 60)])  # and the connection is usable afterwards
    assert store.incr("spend:a", 0) == 1.0
    store.close()
