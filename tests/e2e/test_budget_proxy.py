"""Spend through real proxy processes: prices per token kind, budgets that hold under 200
concurrent requests across two instances on one Redis, downgrades, per-key limits, and spend
that survives a restart."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from router import RequestView
from tests.helpers import (
    MASTER_KEY,
    REASONER_PRICE,
    auth_config,
    expected_cost,
    ledger_records,
    start_proxy,
    write_policy,
)

pytestmark = pytest.mark.e2e
FLASH_PRICE = {"input": 0.27, "output": 1.10}
GLOBAL_LIMIT = 0.0006
BUDGETS = f"""
  - {{name: default-global, per: global, window: day, limit_usd: {GLOBAL_LIMIT}, routes: [default]}}
  - {{name: creative-key, per: key, window: day, limit_usd: 0.0005, on_exceed: downgrade, to: [flash],
     routes: [creative]}}
  - {{name: extraction-key, per: key, window: day, limit_usd: 0.0001, routes: [extraction]}}
"""


@pytest.fixture(scope="module")
def pair(simulator, redis_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("budget-pair")
    policy = write_policy(workdir, state=f'{{backend: redis, url: "{redis_server.url}"}}', budgets=BUDGETS)
    config = auth_config(workdir)
    first = start_proxy(simulator, policy, workdir, config=config)
    try:
        second = start_proxy(simulator, policy, workdir, config=config)
    except BaseException:
        first.stop()
        raise
    yield first, second, policy
    first.stop()
    second.stop()


def post(proxy, content: str, key: str = "sk-tenant-a", **extra) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(
        f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


@pytest.mark.parametrize("reported", [True, False], ids=["reasoning-in-usage", "reasoning-from-text"])
def test_each_token_kind_is_priced_through_the_proxy(pair, sim, redis_url, reported):
    first, _, policy = pair
    sim.set_profile("deepseek-reasoner", output_tokens=10, reasoning_tokens=30, reasoning_usage=reported)
    content = "Prove it step by step, please!!!"  # 32 characters: 8 prompt tokens at the simulator
    response = post(first, content)
    assert response.status_code == 200 and response.headers["x-router-route"] == "reasoning"
    assert float(response.headers["x-router-cost"]) == pytest.approx(
        expected_cost(REASONER_PRICE, 8, 10, 30), abs=1e-11
    )
    with httpx.stream(
        "POST",
        f"{first.url}/v1/chat/completions",
        headers={"Authorization": "Bearer sk-tenant-a"},
        json={"model": "auto", "stream": True, "messages": [{"role": "user", "content": content}]},
    ) as stream:
        assert stream.status_code == 200 and sum(1 for _ in stream.iter_lines()) > 3
    records = ledger_records(policy, 2, lambda r: r["route"] == "reasoning" and r["outcome"] == "ok")[-2:]
    for record in records:  # the whole answer and the stream alike
        assert record["tokens"] == {
            "prompt": 8,
            "cached": 0,
            "completion": 40,
            "reasoning": 30,
            "reasoning_counted": record["tokens"]["reasoning_counted"],
        }
        assert record["cost_usd"] == pytest.approx(expected_cost(REASONER_PRICE, 8, 10, 30))
        assert record["litellm_cost_usd"] is not None  # LiteLLM's own figure is kept beside ours


def test_200_concurrent_requests_on_two_instances_do_not_overrun(pair, sim, redis_url):
    first, second, policy = pair
    content = "What is the tallest mountain on Earth?"

    async def fire():
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as client:

            async def one(i):
                proxy = (first, second)[i % 2]
                body = {"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": content}]}
                return await client.post(
                    f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
                )

            return await asyncio.gather(*(one(i) for i in range(200)))

    responses = asyncio.run(fire())
    statuses = [r.status_code for r in responses]
    assert set(statuses) == {200, 429}
    rejected = [r for r in responses if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) > 0 for r in rejected)
    assert all(r.json()["error"]["type"] == "budget_exceeded" for r in rejected)
    served = ledger_records(policy, statuses.count(200), lambda r: r["route"] == "default" and r["outcome"] == "ok")
    spent = sum(r["cost_usd"] for r in served)
    view = RequestView({"model": "auto", "messages": [{"role": "user", "content": content}]}, 10**6)
    one_reservation = (view.prompt_tokens * FLASH_PRICE["input"] + 50 * FLASH_PRICE["output"]) / 1e6
    assert spent <= GLOBAL_LIMIT + one_reservation
    assert spent == pytest.approx(statuses.count(200) * expected_cost(FLASH_PRICE, len(content) // 4, 24, 0))
    assert sim.count("deepseek-v4-flash") == statuses.count(200)


def test_a_downgrade_budget_moves_requests_to_the_cheaper_model(pair, sim, redis_url):
    first, second, policy = pair
    responses = []
    for i in range(3):
        responses.append(post((first, second)[i % 2], "Write a poem about the sea", max_tokens=20))
        ledger_records(policy, i + 1)  # the answer settled: the next reservation sees the real spend
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.headers["x-router-model"] for r in responses] == ["gpt-4o", "gpt-4o", "deepseek-v4-flash"]
    assert "downgraded to 'flash'" in responses[2].headers["x-router-reason"]
    assert sim.count("gpt-4o") == 2 and sim.count("deepseek-v4-flash") == 1
    for i in range(6):  # the ladder ends at flash: then the budget rejects, and says why in headers too
        last = post(first, "Write a poem about the sea", max_tokens=20)
        ledger_records(policy, 4 + i)
    assert last.status_code == 429 and "creative-key" in last.headers["x-router-reason"]


def test_a_budget_per_key_stops_one_key_only(pair, sim, redis_url):
    first, _, policy = pair
    statuses = []
    for i in range(10):
        text = "Extract the dates from this text: May 1, June 2"
        statuses.append(post(first, text, key="sk-tenant-a", max_tokens=20).status_code)
        ledger_records(policy, i + 1)
    assert statuses[0] == 200 and statuses[-1] == 429
    response = post(first, "Extract the dates from this text: May 1, June 2", key="sk-tenant-b", max_tokens=20)
    assert response.status_code == 200 and "x-router-budget-remaining" in response.headers


def test_spend_survives_a_restart(simulator, sim, tmp_path):
    policy = write_policy(tmp_path, budgets="  - {name: small, per: global, window: day, limit_usd: 0.0001}")
    proxy = start_proxy(simulator, policy, tmp_path)
    try:
        statuses = []
        for i in range(8):
            statuses.append(post(proxy, "hello there", key=MASTER_KEY, max_tokens=30).status_code)
            ledger_records(policy, i + 1)
        assert statuses[0] == 200 and 429 in statuses
    finally:
        proxy.stop()
    served_before = sim.count("deepseek-v4-flash")
    restarted = start_proxy(simulator, policy, tmp_path)
    try:
        response = post(restarted, "hello there", key=MASTER_KEY, max_tokens=30)
        assert response.status_code == 429 and "small" in response.json()["error"]["message"]
        assert sim.count("deepseek-v4-flash") == served_before
    finally:
        restarted.stop()


def test_the_reasoning_cap_reaches_the_provider_and_an_overrun_is_recorded(pair, sim, redis_url):
    first, _, policy = pair
    sim.set_profile("deepseek-reasoner", reasoning_tokens=8100, output_tokens=5)  # the route caps at 8000
    assert post(first, "Prove that 7 is prime, step by step").status_code == 200
    assert sim.requests_for("deepseek-reasoner")[-1]["reasoning_effort"] == "medium"
    record = ledger_records(policy, 1, lambda r: r["route"] == "reasoning" and r["outcome"] == "ok")[-1]
    assert record["tokens"]["reasoning"] == 8100 and record["reasoning_over_cap"] is True
