"""The SDK path: after `router.install`, litellm.completion/acompletion(model="auto") follow the policy,
sync and async, streaming and not; the simulator's counters prove which model answered."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import litellm
import pytest

from tests.helpers import (
    REASONER_PRICE,
    expected_cost,
    ledger_records,
    poll_until,
    sdk_installed,
    write_policy,
)

DEBUG = [{"role": "user", "content": "Please debug this code: x = 1/0"}]
PLAIN = [{"role": "user", "content": "What is the tallest mountain?"}]


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    return write_policy(tmp_path_factory.mktemp("sdk"))


@pytest.fixture(scope="module")
def installed(simulator, policy):
    with sdk_installed(simulator.url, policy) as installed:
        yield installed


def test_sync_completion_is_routed(installed, sim):
    response = litellm.completion(model="auto", messages=DEBUG)
    assert response.choices[0].message.content.startswith("[deepseek-reasoner#")
    assert response._hidden_params["router"]["route"] == "reasoning"
    response = litellm.completion(model="auto", messages=PLAIN)
    assert response._hidden_params["router"]["route"] == "default"
    assert sim.count("deepseek-reasoner") == 1 and sim.count("deepseek-v4-flash") == 1


def test_sync_streaming_is_routed(installed, sim):
    chunks = list(litellm.completion(model="auto", messages=DEBUG, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[deepseek-reasoner#")
    assert sim.count("deepseek-reasoner", "streams") == 1


def test_async_completion_and_streaming_are_routed(installed, sim):
    async def go():
        response = await litellm.acompletion(model="auto", messages=PLAIN, temperature=0.2)
        stream = await litellm.acompletion(model="auto", messages=DEBUG, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return response, text

    response, text = anyio.run(go)
    assert response.choices[0].message.content.startswith("[deepseek-v4-flash#")
    assert text.startswith("[deepseek-reasoner#")
    assert sim.count("deepseek-v4-flash") == 1 and sim.count("deepseek-reasoner", "streams") == 1
    assert sim.requests_for("deepseek-v4-flash")[-1]["temperature"] == 0.2  # parameters reach the model


def test_a_named_model_is_not_routed(installed, sim):
    litellm.completion(model="openai/glm-4-plus", api_base=f"{sim.url}/v1", api_key="x", messages=DEBUG)
    assert sim.count("glm-4-plus") == 1 and sim.count("deepseek-reasoner") == 0


def test_fallback_on_a_failing_model(installed, sim):
    sim.set_profile("deepseek-reasoner", error_rate=1.0)
    response = litellm.completion(model="auto", messages=DEBUG)
    assert response.choices[0].message.content.startswith("[deepseek-v4-pro#")
    assert sim.count("deepseek-reasoner", "errors") >= 1


def test_a_rejected_request_raises_a_clear_error(installed, sim):
    with pytest.raises(litellm.BadRequestError) as caught:
        litellm.completion(model="auto", messages=[{"role": "user", "content": "x" * 1_000_001}])
    assert "max_prompt_chars" in str(caught.value)
    assert sim.stats() == {}


def priced(policy: Path, since: float, timeout: float = 5.0) -> dict:
    """The ledger record of the reasoning request made at `since` or later (spend and the ledger are
    written after the answer, and sync SDK logging runs on a background thread: wait for it)."""
    found = ledger_records(
        policy, 1, lambda r: r["outcome"] == "ok" and r["route"] == "reasoning" and r["t"] >= since, timeout
    )
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("reported", [True, False], ids=["reasoning-in-usage", "reasoning-from-text"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_reasoning_tokens_are_priced_apart(installed, sim, policy, reported, stream):
    sim.set_profile("deepseek-reasoner", output_tokens=10, reasoning_tokens=30, reasoning_usage=reported)
    content = "Prove it step by step, please!!!"  # 32 characters: the simulator counts 8 prompt tokens
    since = time.time()
    response = litellm.completion(model="auto", messages=[{"role": "user", "content": content}], stream=stream)
    if stream:
        list(response)
    record = priced(policy, since)
    assert record["tokens"]["reasoning"] == 30
    if not stream:  # in a stream without the figure, LiteLLM's chunk builder counts the text itself
        assert record["tokens"]["reasoning_counted"] is not reported
    assert record["tokens"]["prompt"] == 8 and record["tokens"]["completion"] == 40
    assert record["cost_usd"] == pytest.approx(expected_cost(REASONER_PRICE, 8, 10, 30))


def test_model_health_and_retry_after_holds_in_the_sdk(installed, sim):
    health = installed.runtime.health
    health.tick()
    before = health.figures("deepseek-v4-flash", 60).requests

    async def go():
        await litellm.acompletion(model="auto", messages=PLAIN)
        sim.set_profile("deepseek-reasoner", rate_limit_rate=1.0, retry_after=3)
        first = await litellm.acompletion(model="auto", messages=DEBUG)  # 429: falls back at once
        second = await litellm.acompletion(model="auto", messages=DEBUG)  # held: never sent to the reasoner
        return first, second

    first, second = anyio.run(go)
    assert first.choices[0].message.content.startswith("[deepseek-v4-pro#")
    assert second.choices[0].message.content.startswith("[deepseek-v4-pro#")
    assert second._hidden_params["router"]["shifted_from"] == "deepseek-r1"
    assert sim.count("deepseek-reasoner") == 1  # one 429, no retry, no second request
    health.tick()
    assert health.figures("deepseek-v4-flash", 60).requests == before + 1  # each call counted once
    assert health.held["deepseek-r1"] > 0


def test_a_truncated_answer_is_retried_on_the_larger_model(installed, sim):
    sim.set_profile("deepseek-v4-flash", truncate=True)
    response = litellm.completion(model="auto", messages=[{"role": "user", "content": "Tell me about the Nile"}])
    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].message.content.startswith("[deepseek-v4-pro#")
    decision = response._hidden_params["router"]
    assert decision["truncated_on"] == "deepseek-v4-flash" and "retried on 'pro'" in decision["reasons"][-1]
    assert sim.count("deepseek-v4-flash") == 1 and sim.count("deepseek-v4-pro") == 1


def stored(installed, answers: int) -> None:
    """LiteLLM stores an answer in the cache just after it returns it: wait until `answers` are in."""

    poll_until(lambda: len(installed.runtime.cache.lru) >= answers, 10, "the cache write")


def test_the_sdk_serves_answers_from_the_cache_exact_and_semantic_sync_and_async(installed, sim):
    question = [{"role": "user", "content": "What is the boiling point of water at sea level?"}]
    reworded = [{"role": "user", "content": "At sea level, what is the boiling point of water?"}]
    before = len(installed.runtime.cache.lru)
    embedded, asked = installed.runtime.cache.embedder.computed, installed.runtime.cache.embedder.asked
    first = litellm.completion(model="auto", messages=question, temperature=0)
    assert first._hidden_params["router"]["cache"] == "miss"
    stored(installed, before + 1)
    again = litellm.completion(model="auto", messages=question, temperature=0)
    assert again._hidden_params["router"]["cache"] == "exact" and again._hidden_params.get("cache_hit") is True
    assert again._hidden_params["cache_key"] == again._hidden_params["router"]["cache_key"]  # LiteLLM hashed nothing
    assert again.choices[0].message.content == first.choices[0].message.content
    similar = litellm.completion(model="auto", messages=reworded, temperature=0)
    assert similar._hidden_params["router"]["cache"].startswith("semantic;score=")
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in litellm.completion(model="auto", messages=question, temperature=0, stream=True)
        if c.choices
    )
    assert streamed == first.choices[0].message.content

    async def go():
        response = await litellm.acompletion(model="auto", messages=question, temperature=0)
        stream = await litellm.acompletion(model="auto", messages=reworded, temperature=0, stream=True)
        return response, "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    response, text = anyio.run(go)
    assert response._hidden_params["router"]["cache"] == "exact"
    assert text == first.choices[0].message.content
    assert sim.count("deepseek-v4-flash") == 1  # one upstream call for all six answers
    # Two prompts, each embedded once: the miss's lookup and its store share one vector, and the
    # reworded question asked twice is not embedded again.
    assert installed.runtime.cache.embedder.computed - embedded == 2
    # Asked twice: by the first question's lookup and the reworded one's first; never by a store,
    # and not by the reworded question asked again (its earlier match answers it).
    assert installed.runtime.cache.embedder.asked - asked == 2


def test_an_async_streamed_hit_keeps_the_reasoning(installed, sim):
    sim.set_profile("*", reasoning_tokens=12)  # whichever model serves (an earlier test may have shifted the reasoner)
    proof = [{"role": "user", "content": "Prove step by step that 11 is prime."}]

    async def streamed():
        stream = await litellm.acompletion(model="auto", messages=proof, temperature=0, stream=True)
        chunks = [c async for c in stream if c.choices]
        return "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks)

    before = len(installed.runtime.cache.lru)
    first = anyio.run(streamed)
    stored(installed, before + 1)
    assert len(first.split()) == 12 and anyio.run(streamed) == first
    assert sum(counts.get("requests", 0) for counts in sim.stats().values()) == 1


def test_a_conversation_keeps_its_model_through_litellm_completion(installed, sim):
    messages = list(DEBUG)
    first = litellm.completion(model="auto", messages=messages)
    assert first._hidden_params["router"]["affinity"] == "started"
    for turn, follow_up in ((2, "ok now fix it"), (3, "and what was wrong?")):
        messages += [{"role": "assistant", "content": first.choices[0].message.content}]
        messages += [{"role": "user", "content": follow_up}]
        response = litellm.completion(model="auto", messages=messages)
        record = response._hidden_params["router"]
        assert (record["route"], record["affinity"]) == ("reasoning", "kept")  # alone: the default route
        assert f"turn {turn} stays on route 'reasoning'" in record["reasons"][0]
        # the first turn's model (or where a hold an earlier test left moves it, as it moved the first)
        assert record["target"] == first._hidden_params["router"]["target"]
    alone = litellm.completion(model="auto", messages=[{"role": "user", "content": "ok now fix it"}])
    assert alone._hidden_params["router"]["route"] == "default"
