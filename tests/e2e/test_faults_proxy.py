"""Faults under load through a real proxy: Redis killed (SIGKILL) while requests are in flight and
restarted empty. No request fails, nothing crashes, and the budgets still hold afterwards."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.helpers import MASTER_KEY, ledger, ledger_records, poll_until, procs, start_proxy, write_policy

pytestmark = pytest.mark.e2e
GLM = "glm-4-plus"
LIMIT = 0.0006  # USD a day for the extraction route
GLM_PRICE = {"input": 0.20, "output": 0.80}
MAX_TOKENS = 50
BUDGETS = f"  - {{name: extract-global, per: global, window: day, limit_usd: {LIMIT}, routes: [extraction]}}"


def post(proxy, content: str, **extra) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], "max_tokens": MAX_TOKENS, **extra}
    return httpx.post(
        f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60
    )


def cost(response: httpx.Response) -> float:
    return float(response.headers["x-router-cost"])


def test_redis_killed_under_load_and_restarted_empty(simulator, sim, tmp_path):
    redis = procs.RedisServer(tmp_path)
    redis.start()
    proxy = None
    try:
        policy = write_policy(tmp_path, state=f'{{backend: redis, url: "{redis.url}"}}', budgets=BUDGETS)
        proxy = start_proxy(simulator, policy, tmp_path)
        sim.set_profile(GLM, latency_ms=2500)
        stop = threading.Event()
        background: list[httpx.Response] = []

        def load(worker: int) -> None:  # other traffic, on the default route, all along
            while not stop.is_set():
                background.append(post(proxy, f"hello from worker {worker}, request {len(background)}"))

        with ThreadPoolExecutor(12) as pool:
            loaders = [pool.submit(load, w) for w in range(4)]
            in_flight = [pool.submit(post, proxy, f"Please extract the total from invoice {i}") for i in range(8)]
            poll_until(lambda: sim.count(GLM) >= 8, 10, "the eight extractions at the model")
            redis.kill()  # the reservations of the eight in flight are lost with everything else
            time.sleep(0.5)
            redis.start()  # empty
            first = [f.result() for f in in_flight]
            # The store fails fast for a second after an outage; then the backlog (spend, then the
            # ledger, on one sync tick) is written.
            ledger_records(policy, 8, lambda r: r["route"] == "extraction" and r["outcome"] == "ok")
            stop.set()
            for loader in loaders:
                loader.result()
        assert [r.status_code for r in first] == [200] * 8
        assert background and {r.status_code for r in background} == {200}, {r.status_code for r in background}

        sim.set_profile(GLM, latency_ms=0)
        after = []
        while len(after) < 80:
            after.append(post(proxy, f"Please extract the total from invoice {100 + len(after)}"))
            if after[-1].status_code != 200:
                break
        assert after[-1].status_code == 429, [r.status_code for r in after]
        assert "extract-global" in after[-1].json()["error"]["message"]
        # What the budget admitted since Redis came back empty: the eight that were in flight (settled
        # at their real cost, not as negative deltas) and the sequential ones.
        admitted = sum(cost(r) for r in first) + sum(cost(r) for r in after if r.status_code == 200)
        one_reservation = (
            (len("Please extract the total from invoice 100") / 4 + 4 + MAX_TOKENS) * GLM_PRICE["output"] / 1e6
        )
        assert admitted <= LIMIT + one_reservation, (admitted, LIMIT)
        assert proxy.proc.poll() is None  # nothing crashed
    finally:
        if proxy is not None:
            proxy.stop()
        redis.stop()


def sigterm_under_load(proxy, sim, content: str, count: int = 10) -> list[httpx.Response]:
    """`count` requests that take 1.5 s each, and a SIGTERM while they are all in flight."""
    sim.set_profile("deepseek-v4-flash", latency_ms=1500)
    with ThreadPoolExecutor(count) as pool:
        answers = [pool.submit(post, proxy, f"{content} {i}") for i in range(count)]
        poll_until(lambda: sim.count("deepseek-v4-flash") == count, 10, "requests in flight")
        proxy.proc.send_signal(signal.SIGTERM)
        return [a.result() for a in answers]


def stopped_cleanly(proxy) -> bool:
    """Uvicorn ends by re-raising the SIGTERM once it has shut down."""
    return proxy.proc.wait(30) in (0, -signal.SIGTERM) and "Application shutdown complete." in proxy.log.read_text()


def test_a_rolling_restart_finishes_requests_in_flight_and_writes_everything(simulator, sim, tmp_path):
    policy = write_policy(tmp_path)
    proxy = start_proxy(simulator, policy, tmp_path)
    try:
        answers = sigterm_under_load(proxy, sim, "hello before the restart")
        assert [r.status_code for r in answers] == [200] * 10
        assert stopped_cleanly(proxy)
    finally:
        proxy.stop()
    log = proxy.log.read_text()
    assert "Application shutdown failed" not in log and "Traceback" not in log
    assert "shutdown: figures, spend and ledger written to the state store" in log
    records = [r for r in ledger(policy) if r["outcome"] == "ok" and r["route"] == "default"]
    assert len(records) == 10 and all(r["cost_usd"] > 0 for r in records)


def test_spend_kept_through_an_outage_survives_a_shutdown_and_reaches_redis_after(simulator, sim, tmp_path):
    import redis as redis_client

    redis = procs.RedisServer(tmp_path)
    redis.start()
    budgets = "  - {name: all-day, per: global, window: day, limit_usd: 5}"
    policy = write_policy(
        tmp_path, state=f'{{backend: redis, url: "{redis.url}", path: {tmp_path / "state.db"}}}', budgets=budgets
    )
    first = start_proxy(simulator, policy, tmp_path)
    try:
        redis.stop()  # down: requests are admitted unchecked and their spend waits in memory
        answers = sigterm_under_load(first, sim, "hello while redis is down")
        assert [r.status_code for r in answers] == [200] * 10
        assert stopped_cleanly(first)
        assert f"10 spend changes and 10 ledger records are kept in {tmp_path / 'pending'}" in first.log.read_text()
        redis.start()  # empty, and the next proxy writes what the first one kept
        second = start_proxy(simulator, policy, tmp_path)
        try:
            key = next(k for k in redis_client.Redis.from_url(redis.url).scan_iter("budget:all-day:usd:*"))
            spent = float(redis_client.Redis.from_url(redis.url).get(key))
            assert spent == pytest.approx(sum(cost(r) for r in answers), rel=1e-6)
            assert len([r for r in ledger(policy) if r["outcome"] == "ok"]) == 10
        finally:
            second.stop()
    finally:
        first.stop()
        redis.stop()
