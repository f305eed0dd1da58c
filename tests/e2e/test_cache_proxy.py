"""The response cache in a real proxy: exact and semantic hits, the guard, tenants, streams.
Two tenant keys come from router.adapter.auth (the proxy has no database)."""

from __future__ import annotations

import pytest
from openai import OpenAI

from tests.helpers import (
    MASTER_KEY,
    auth_config,
    ledger,
    ledger_records,
    poll_until,
    semantic_entries,
    start_proxy,
    write_policy,
)

pytestmark = pytest.mark.e2e
FLASH = "deepseek-v4-flash"


@pytest.fixture(scope="module")
def proxy(simulator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cache-proxy")
    started = start_proxy(simulator, write_policy(workdir), workdir, config=auth_config(workdir))
    started.policy = workdir / "policy.yaml"
    yield started
    started.stop()


def client(proxy, key: str = "sk-tenant-a") -> OpenAI:
    return OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


def ask(proxy, content: str, key: str = "sk-tenant-a", stores: bool = True, **extra):
    """One request; after a miss that is to be stored, wait until it is (`stores=False`: it is not)."""
    before = semantic_entries(proxy.policy)
    raw = client(proxy, key).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": content}], **{"temperature": 0, **extra}
    )
    if stores and raw.headers.get("x-router-cache") == "miss":
        stored(proxy, before)
    return raw.headers, raw.parse()


def stored(proxy, before: int) -> None:
    """LiteLLM writes the cache in a background task after it answers."""
    poll_until(lambda: semantic_entries(proxy.policy) > before, 10, "the answer stored")


def test_the_second_identical_request_is_a_hit(proxy, sim):
    seen = len([r for r in ledger(proxy.policy) if r["outcome"] == "ok"])
    headers, first = ask(proxy, "What is the capital city of France?")
    assert headers["x-router-cache"] == "miss" and sim.count(FLASH) == 1
    headers, second = ask(proxy, "What is the capital city of France?")
    assert headers["x-router-cache"] == "exact"
    assert "x-litellm-cache-key" in headers  # LiteLLM's own hit flag
    assert second.choices[0].message.content == first.choices[0].message.content
    assert sim.count(FLASH) == 1  # the simulator was not asked again
    miss, hit = ledger_records(proxy.policy, seen + 2, lambda r: r["outcome"] == "ok")[-2:]
    assert (miss["cache"], hit["cache"]) == ("miss", "exact")
    assert hit["cost_usd"] == 0 and hit["saved_usd"] == pytest.approx(miss["cost_usd"]) and miss["cost_usd"] > 0


def test_a_paraphrase_hits_the_semantic_tier(proxy, sim):
    _, first = ask(proxy, "How tall is Mount Everest in meters?")
    headers, second = ask(proxy, "In meters, how tall is Mount Everest?")
    label = headers["x-router-cache"]  # the same words reordered: the static embedder scores 1.00
    assert label.startswith("semantic;score=") and float(label.split("=")[1]) >= 0.9
    assert second.choices[0].message.content == first.choices[0].message.content
    assert sim.count(FLASH) == 1


def test_a_different_number_is_not_a_hit(proxy, sim):
    _, six = ask(proxy, "What is 3+3?")
    headers, four = ask(proxy, "What is 2+2?")
    assert headers["x-router-cache"] == "miss" and sim.count(FLASH) == 2
    assert four.choices[0].message.content != six.choices[0].message.content


def test_one_tenant_never_gets_another_tenants_answer(proxy, sim):
    ask(proxy, "Summarize the plot of Hamlet in one sentence.", key="sk-tenant-a")
    headers, _ = ask(proxy, "Summarize the plot of Hamlet in one sentence.", key="sk-tenant-b")
    assert headers["x-router-cache"] == "miss"
    headers, _ = ask(proxy, "In one sentence, summarize the plot of Hamlet.", key="sk-tenant-b")
    assert headers["x-router-cache"] == "exact" or headers["x-router-cache"].startswith("semantic")  # B's own entry
    assert sim.count(FLASH) == 2


def test_an_unknown_key_is_refused(proxy):
    from openai import AuthenticationError

    with pytest.raises(AuthenticationError):
        ask(proxy, "hello", key="sk-nobody")


def test_a_streamed_answer_is_stored_and_a_hit_is_streamed(proxy, sim):
    def stream():
        raw = client(proxy).chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": "Name three rivers in Africa."}],
            temperature=0,
            stream=True,
        )
        return raw.headers, "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)

    before = semantic_entries(proxy.policy)
    headers, first = stream()
    assert headers["x-router-cache"] == "miss"
    stored(proxy, before)
    headers, second = stream()
    assert headers["x-router-cache"] == "exact" and second == first and sim.count(FLASH) == 1


def test_a_streamed_hit_keeps_the_reasoning(proxy, sim):
    sim.set_profile("deepseek-reasoner", reasoning_tokens=30)

    def stream():
        raw = client(proxy).chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": "Prove step by step that 7 is prime."}],
            temperature=0,
            stream=True,
        )
        chunks = [c for c in raw.parse() if c.choices]
        reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks)
        return raw.headers, reasoning, "".join(c.choices[0].delta.content or "" for c in chunks)

    before = semantic_entries(proxy.policy)
    headers, reasoning, text = stream()
    assert headers["x-router-cache"] == "miss" and len(reasoning.split()) == 30
    stored(proxy, before)
    headers, again, text_again = stream()
    assert headers["x-router-cache"] == "exact" and (again, text_again) == (reasoning, text)
    _, whole = ask(proxy, "Prove step by step that 7 is prime.")  # the same answer, not streamed
    assert whole.choices[0].message.reasoning_content == reasoning
    assert sim.count("deepseek-reasoner") == 1


def test_requests_that_may_not_be_cached(proxy, sim):
    ask(proxy, "Tell me a fun fact about owls.", temperature=0.7)
    headers, _ = ask(proxy, "Tell me a fun fact about owls.", temperature=0.7)
    assert headers["x-router-cache"] == "off"  # not deterministic: deterministic_only is on
    ask(proxy, "Tell me a fun fact about cats.", stores=False, extra_body={"cache": {"no-store": True}})
    headers, _ = ask(proxy, "Tell me a fun fact about cats.")
    assert headers["x-router-cache"] == "miss"
    headers, _ = ask(proxy, "Tell me a fun fact about cats.", extra_body={"cache": {"no-cache": True}})
    assert headers["x-router-cache"] == "off" and sim.count(FLASH) == 5


def test_a_truncated_answer_is_not_stored(proxy, sim):
    sim.set_profile(FLASH, truncate=True)
    ask(proxy, "Describe the water cycle.", stores=False)
    headers, _ = ask(proxy, "Describe the water cycle.", stores=False)
    assert headers["x-router-cache"] == "miss" and sim.count(FLASH) == 2


def test_the_master_key_has_its_own_scope(proxy, sim):
    ask(proxy, "What is the boiling point of water at sea level?")
    headers, _ = ask(proxy, "What is the boiling point of water at sea level?", key=MASTER_KEY)
    assert headers["x-router-cache"] == "miss"
