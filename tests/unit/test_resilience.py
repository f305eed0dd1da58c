"""Failure handling in the adapter: which errors speak about a model's health, retry-after parsing,
the answers a failed request gets, and each attempt's figures for model health."""

from __future__ import annotations

import email.utils
import time

import httpx
import litellm
import pytest
from fastapi import HTTPException

from router import CompiledPolicy, parse_policy
from router.adapter import resilience

POLICY = CompiledPolicy(
    parse_policy("""
version: 1
settings: {timeout: 20s, retries: 2, unavailable: {message: busy, retry_after: 9s}}
models:
  small: {target: g-small, context: 8k}
  big: {target: g-big, context: 128k}
routes:
  - {name: essay, when: {any: [essay]}, use: small, on_truncation: big, timeout: 5s, retries: 0}
  - {name: default, use: small, fallbacks: [big]}
""")
)


def rate_limited(retry_after: str) -> litellm.RateLimitError:
    response = httpx.Response(429, headers={"retry-after": retry_after}, request=httpx.Request("POST", "http://x"))
    return litellm.RateLimitError("slow down", llm_provider="openai", model="m", response=response)


def test_retry_after_as_seconds_or_date():
    assert resilience.retry_after(rate_limited("2")) == 2.0
    assert resilience.retry_after(rate_limited("0.5")) == 0.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert resilience.retry_after(rate_limited(later)) == pytest.approx(30, abs=2)
    assert resilience.retry_after(rate_limited("soon")) is None
    assert resilience.retry_after(ValueError("no headers")) is None


def test_which_failures_are_the_providers():
    server = litellm.InternalServerError("boom", llm_provider="openai", model="m")
    timeout = litellm.Timeout("slow", model="m", llm_provider="openai")
    bad = litellm.BadRequestError("bad", model="m", llm_provider="openai")
    assert resilience.is_upstream_failure(server) and resilience.counts_as_error(server)
    assert resilience.is_upstream_failure(timeout) and resilience.counts_as_error(timeout)
    assert resilience.is_upstream_failure(rate_limited("1")) and not resilience.counts_as_error(rate_limited("1"))
    lost = litellm.APIConnectionError("connection refused", llm_provider="openai", model="m")
    assert resilience.is_upstream_failure(lost) and resilience.counts_as_error(lost)
    assert not resilience.is_upstream_failure(bad)  # the client's request, not the model's health
    assert not resilience.is_upstream_failure(HTTPException(status_code=503, detail="ours"))
    assert not resilience.is_upstream_failure(ValueError("a bug of ours"))


def test_a_rate_limited_request_with_no_other_model_gets_our_429():
    alone = {"target": "g-small", "fallbacks": []}
    answer = resilience.rate_limited(alone, rate_limited("3"))
    assert (answer.status_code, answer.headers) == (429, {"Retry-After": "3"}) and "rate limited" in answer.detail
    assert (
        resilience.rate_limited({**alone, "fallbacks": ["g-big"]}, rate_limited("3")) is None
    )  # the chain failed: 503
    assert resilience.rate_limited(alone, litellm.InternalServerError("boom", llm_provider="openai", model="m")) is None


def test_the_503_answer_takes_the_longer_wait():
    answer = resilience.unavailable(POLICY, rate_limited("60"))
    assert (answer.status_code, answer.detail, answer.headers) == (503, "busy", {"Retry-After": "60"})
    assert resilience.unavailable(POLICY, ValueError()).headers == {"Retry-After": "9"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def health_on_memory():
    from router.engine.health import Health
    from router.state import open_store

    clock = FakeClock()
    return Health(open_store("memory"), lambda: POLICY, clock=clock), clock


def attempt_data(call: str, group: str) -> dict:
    return {
        "litellm_call_id": call,
        "metadata": {"model_group": group, "model_group_size": 1},
        "model_info": {"id": "d1"},
    }


def test_each_attempt_ends_once_with_its_own_latency():
    """The proxy reuses one call id for a request's retries and fallbacks and logs one failure event
    for all of them: attempts are ended by the deployment hook, and the late event is a duplicate."""
    health, clock = health_on_memory()
    server = litellm.InternalServerError("boom", llm_provider="openai", model="m")
    resilience.started(health, {"litellm_call_id": "c", "litellm_params": {"metadata": {"model_group": "g-small"}}})
    clock.now += 0.2
    resilience.attempt_failed(health, attempt_data("c", "g-small"), server)
    resilience.started(health, {"litellm_call_id": "c", "litellm_params": {"metadata": {"model_group": "g-big"}}})
    # The request's one failure event arrives late, naming the first attempt's group: ignored.
    resilience.observe(health, {"litellm_call_id": "c", "standard_logging_object": {"model_group": "g-small"}}, server)
    assert health.in_flight["c"][0] == "g-big"
    clock.now += 0.1
    event = {"model_group": "g-big", "model_id": "d2", "startTime": 999.0, "endTime": clock.now}  # the request's span
    resilience.observe(health, {"litellm_call_id": "c", "standard_logging_object": event})
    assert "c" not in health.in_flight
    pending = health.tally.drain()
    small = next(f for (subject, _), f in pending.items() if subject == "g-small")
    big = next(f for (subject, _), f in pending.items() if subject == "g-big")
    assert (small["n"], small["e"]) == (1, 1)
    assert big["n"] == 1 and "e" not in big
    from router.core.windows import summarize

    assert summarize([big]).p50_latency == pytest.approx(0.1, rel=0.03)  # the attempt's, not the request's 1.3 s


def test_sync_sdk_failures_come_from_their_own_events():
    health, _ = health_on_memory()
    server = litellm.InternalServerError("boom", llm_provider="openai", model="m")
    for call in ("c1", "c2"):  # a sync retry is a call of its own, logged apart
        resilience.started(
            health, {"litellm_call_id": call, "litellm_params": {"metadata": {"model_group": "g-small"}}}
        )
        resilience.observe(
            health, {"litellm_call_id": call, "standard_logging_object": {"model_group": "g-small"}}, server
        )
    (fields,) = health.tally.drain().values()
    assert (fields["n"], fields["e"]) == (2, 2) and not health.in_flight
