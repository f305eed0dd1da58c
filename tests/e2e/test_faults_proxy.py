"""Faults under load through a real proxy: Redis killed (SIGKILL) while requests are in flight and
restarted empty. No request fails, nothing crashes, and the budgets still hold afterwards."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import procs
from conftest import MASTER_KEY, start_proxy, write_policy

pytestmark = pytest.mark.e2e
GLM = "glm-4-plus"
LIMIT = 0.0006  # USD a day for the extraction route
GLM_PRICE = {"input": 0.20, "output": 0.80}
MAX_TOKENS = 50
BUDGETS = f"  - {{name: extract-global, per: global, window: day, limit_usd: {LIMIT}, routes: [extraction]}}"


def post(proxy, content: str, **extra) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], "max_tokens": MAX_TOKENS, **extra}
    return httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      timeout=60)


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
            time.sleep(1.0)
            redis.kill()  # the reservations of the eight in flight are lost with everything else
            time.sleep(0.5)
            redis.start()  # empty
            first = [f.result() for f in in_flight]
            time.sleep(2.0)  # the store fails fast for a second after an outage; the backlog is written
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
        one_reservation = (len("Please extract the total from invoice 100") / 4 + 4 + MAX_TOKENS) * GLM_PRICE["output"] / 1e6
        assert admitted <= LIMIT + one_reservation, (admitted, LIMIT)
        assert proxy.proc.poll() is None  # nothing crashed
    finally:
        if proxy is not None:
            proxy.stop()
        redis.stop()
