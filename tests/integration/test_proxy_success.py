"""The proxy callback's success event, on a real runtime (SQLite): the request is claimed at once and
settled and recorded on the writer thread's next write, with its spend before its record."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio
import litellm
import pytest
from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

from router.adapter.proxy import PolicyRouter
from router.cache.embedders import StaticEmbedder
from router.engine.policy_file import PolicyFile
from router.engine.runtime import build_runtime

POLICY = """\
version: 1
settings: {default_output_tokens: 1000}
models:
  flash: {target: deepseek-v4-flash, context: 128k, price: {input: 1, output: 1}}
routes:
  - {name: default, use: flash}
budgets:
  - {name: key-daily, per: key, window: day, limit_usd: 1}
state: {backend: sqlite, path: STATE}
"""
AUTH = UserAPIKeyAuth(api_key="hash-of-key", team_id="team-a", user_role=LitellmUserRoles.INTERNAL_USER)


@pytest.fixture
def handler(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("STATE", str(tmp_path / "state.db")))
    policy = PolicyFile(path)
    runtime = build_runtime(policy, lambda name: StaticEmbedder())
    runtime.closed.set()  # no background threads' writes: the test calls `write` itself
    yield PolicyRouter(policy, runtime)
    runtime.closed.clear()
    runtime.close()


def routed(handler: PolicyRouter) -> dict:
    data = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}], "metadata": {}}
    return anyio.run(handler.async_pre_call_hook, AUTH, None, data, "acompletion")


def succeed(handler: PolicyRouter, data: dict, completion_tokens: int = 10) -> None:
    response = litellm.ModelResponse(
        model="deepseek-v4-flash",
        choices=[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        usage={"prompt_tokens": 100, "completion_tokens": completion_tokens, "total_tokens": 100 + completion_tokens},
    )
    kwargs = {
        "litellm_params": {"metadata": data["metadata"]},
        "standard_logging_object": {"model_group": data["model"], "response_cost": 0.0},
        "litellm_call_id": "call-1",
        "model": data["model"],
    }
    end = datetime.now()
    anyio.run(handler.async_log_success_event, kwargs, response, end - timedelta(seconds=0.2), end)


def ok_requests(handler: PolicyRouter) -> float:
    assert handler.runtime.metrics is not None
    text = handler.runtime.metrics.render().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("router_requests_total{") and 'outcome="ok"' in line
    )


def remaining(data: dict) -> float:
    return data["metadata"]["router"]["budget"]["remaining"]


def test_a_success_is_claimed_at_once_and_settled_and_recorded_at_the_next_write(handler):
    first = routed(handler)
    record = first["metadata"]["router"]
    reserved = record["reservation"]["holds"][0]["amount"]  # its prompt and 1,000 output tokens at $1/M
    assert reserved == pytest.approx(1000e-6, rel=0.05)
    succeed(handler, first)
    assert record["settled"] is True  # claimed: no other event settles it again
    # A failure event for the same request after its success gives nothing back and records nothing.
    anyio.run(handler.async_post_call_failure_hook, first, RuntimeError("client went away"), AUTH)
    assert handler.runtime.accounting.ledger.backlog == 0  # nothing of it done on the event loop
    assert ok_requests(handler) == 0
    second = routed(handler)  # the first still counts at its reservation
    assert remaining(second) == pytest.approx(1 - 2 * reserved)

    handler.runtime.write()
    assert ok_requests(handler) == 1
    third = routed(handler)  # the first at its real cost now: 100 prompt + 10 output tokens at $1/M
    assert remaining(third) == pytest.approx(1 - 110e-6 - 2 * reserved)  # the second still at its reservation
