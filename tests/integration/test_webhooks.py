"""Webhook alerts: queued off the request path, claimed in the state store so that one message
goes out per event whatever the number of processes, retried when the receiver fails."""

from __future__ import annotations

import json

import httpx

from router.engine.webhooks import Notifier
from router.policy.observe import WebhookConfig
from router.state import open_store

CONFIG = WebhookConfig(url="http://alerts.example/hook", retries=3)


def receiver(fail_first: int = 0):
    """A mock transport (httpx's seam) that answers 500 `fail_first` times, then 200; and what it got."""
    got: list[dict] = []

    def answer(request: httpx.Request) -> httpx.Response:
        got.append(json.loads(request.content))
        return httpx.Response(500 if len(got) <= fail_first else 200)

    return httpx.MockTransport(answer), got


def standing(total: float, scope: str = "team-a", period: str = "d2026120300") -> list:
    return [("team-daily", "usd", 10.0, total, scope, period, 3600.0)]


def drain(notifier: Notifier) -> list[bool]:
    sent = []
    while not notifier._queue.empty():
        event = notifier._queue.get_nowait()
        if event is not None:
            sent.append(notifier.send(event))
    return sent


def test_each_threshold_of_each_scope_and_window_alerts_once(tmp_path):
    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    transport, got = receiver()
    notifier = Notifier(store, CONFIG, transport, sleep=lambda s: None)
    for total in (1.0, 4.0, 5.5, 6.0, 8.1, 8.5, 9.0):  # requests of one scope, its spend growing
        notifier.budget(standing(total))
    notifier.budget(standing(5.2, scope="team-b"))
    notifier.budget(standing(8.2, period="d2026120400"))  # the next day's window is another event
    assert drain(notifier) == [True, True, True, True, True]
    shares = [(m["router"]["scope"], m["router"]["window"], m["router"]["threshold"]) for m in got]
    assert shares == [
        ("team-a", "d2026120300", 0.5),
        ("team-a", "d2026120300", 0.8),
        ("team-b", "d2026120300", 0.5),
        ("team-a", "d2026120400", 0.5),
        ("team-a", "d2026120400", 0.8),
    ]
    assert got[1]["text"] == "Budget 'team-daily' at 80% for team-a: 8.1 of 10 usd (d2026120300)"


def test_two_processes_on_one_store_send_one_message_and_a_failing_receiver_is_retried(tmp_path):
    store = open_store("sqlite", path=str(tmp_path / "state.db"))
    transport, got = receiver(fail_first=2)
    pauses: list[float] = []
    first = Notifier(store, CONFIG, transport, sleep=pauses.append)
    second = Notifier(open_store("sqlite", path=str(tmp_path / "state.db")), CONFIG, transport, sleep=pauses.append)
    for notifier in (first, second):  # both saw the shift start (two workers)
        notifier.shift("flash-slow", "flash", started=True, count=3, reason="p95 4.1s over 3s")
    assert drain(first) == [True] and drain(second) == [False]
    assert len(got) == 3 and got[0] == got[2] and pauses == [1.0, 2.0]  # two 500s, then delivered
    assert got[-1]["text"] == "Shift 'flash-slow' started: traffic moved off flash (p95 4.1s over 3s)"
    assert got[-1]["router"] == {
        "kind": "shift_start",
        "rule": "flash-slow",
        "watch": "flash",
        "count": 3,
        "reason": "p95 4.1s over 3s",
    }
    first.shift("flash-slow", "flash", started=False, count=3, reason="")
    assert drain(first) == [True] and got[-1]["router"]["kind"] == "shift_end"


def test_a_receiver_that_never_answers_is_given_up_on_and_logged(tmp_path, caplog):
    store = open_store("memory")
    transport, got = receiver(fail_first=99)
    notifier = Notifier(store, CONFIG, transport, sleep=lambda s: None)
    notifier.shift("flash-slow", "flash", started=True, count=1, reason="x")
    assert drain(notifier) == [False] and len(got) == 4  # the first try and three retries
    assert "not delivered after 4 attempts (HTTP 500)" in caplog.text


def test_the_sender_thread_sends_what_is_queued_before_it_stops(tmp_path):
    transport, got = receiver()
    notifier = Notifier(open_store("memory"), CONFIG, transport)
    notifier.start()
    notifier.budget(standing(10.0))  # 50, 80 and 100 % at once
    notifier.close()
    assert [m["router"]["threshold"] for m in got] == [0.5, 0.8, 1.0]
