"""The request pipeline both adapters call (router.engine.pipeline), on a memory store: routing,
refusals that keep their record, budget admission, attempt parameters, reasoning controls, the
cache opt-in, and the retry of a truncated answer."""

from __future__ import annotations

import pytest

from router import CompiledPolicy, Identity, RequestRejected, parse_policy
from router.cache.service import ResponseCache
from router.engine.accounting import Accounting
from router.engine.affinity import Conversations
from router.engine.budget_book import BudgetBook
from router.engine.health import Health
from router.engine.ledger import Ledger, records
from router.engine.pipeline import Pipeline, Refused
from router.engine.record import identity_of
from router.state import open_store

POLICY = """
version: 1
settings: {timeout: 20s, retries: 2}
models:
  small: {target: g-small, context: 8k, price: {input: 1, output: 1}}
  big: {target: g-big, context: 128k, price: {input: 1, output: 1}}
  premium: {target: g-premium, context: 128k, price: {input: 100, output: 100}}
  thinker: {target: g-think, context: 128k, price: {input: 1, output: 1}, reasoning_control: effort}
routes:
  - {name: essay, when: {any: [essay]}, use: small, on_truncation: big, timeout: 5s, retries: 0}
  - {name: think, when: {any: [prove]}, use: thinker, reasoning: {max_tokens: 4000}}
  - {name: default, use: small, fallbacks: [big]}
cache:
  exact: {ttl: 1h}
  semantic: {enabled: false}
  deterministic_only: true
budgets:
  - {name: tiny, per: key, limit_usd: 0.000001, window: day, on_exceed: reject, models: [premium]}
state: {backend: memory}
"""
ALICE = Identity(key_hash="k-alice", team="t1", tags=("eu",))


class File:
    """What the pipeline needs of a policy file: its current compiled policy."""

    def __init__(self, text: str):
        self.current = CompiledPolicy(parse_policy(text))


@pytest.fixture
def pipeline() -> Pipeline:
    policy = File(POLICY)
    store = open_store("memory")
    health = Health(store, lambda: policy.current)
    cache = ResponseCache(store, None, 100, 1000)
    return Pipeline(policy, health, Accounting(policy, BudgetBook(store), Ledger(store)), cache, Conversations(store))


def body(text: str, **extra) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def test_an_admitted_request_carries_its_record_and_what_its_call_needs(pipeline):
    admitted = pipeline.prepare(body("write an essay", temperature=0), ALICE)
    assert (admitted.decision.route, admitted.decision.target) == ("essay", "g-small")
    record = admitted.record
    assert (record["route"], record["model"], record["target"]) == ("essay", "small", "g-small")
    assert identity_of(record) == ALICE  # written once, read back whole
    assert admitted.attempt == {
        "num_retries": 0,
        "timeout": 5.0,
        "model_group_retry_policy": {"g-small": {"RateLimitErrorRetries": 0}},
    }
    assert admitted.cacheable and record["cache_params"] == {"temperature": 0}


def test_a_client_timeout_is_kept_and_the_settings_fill_in_for_the_route(pipeline):
    admitted = pipeline.prepare(body("hello", timeout=3), ALICE)
    assert "timeout" not in admitted.attempt  # the client's own stays
    assert admitted.attempt["num_retries"] == 2
    assert admitted.attempt["model_group_retry_policy"] == {
        g: {"RateLimitErrorRetries": 0} for g in ("g-small", "g-big")
    }


def test_a_request_that_is_not_deterministic_stays_out_of_the_cache(pipeline):
    admitted = pipeline.prepare(body("hello", temperature=0.7), ALICE)
    assert not admitted.cacheable and admitted.record["cache"] == "off" and "cache_key" not in admitted.record


def test_the_cache_is_looked_up_on_the_pre_call_path_and_the_record_names_the_answer(pipeline):
    first = pipeline.prepare(body("hello", temperature=0), ALICE).record
    assert first["cache"] == "miss" and "cache_from" not in first
    answer = '{"choices": [{"finish_reason": "stop", "message": {"content": "hi"}}]}'
    assert pipeline.cache.save_pending(first["cache_key"], answer, {"choices": [{"finish_reason": "stop"}]})
    again = pipeline.prepare(body("hello", temperature=0), ALICE).record
    assert again["cache"] == "exact" and again["cache_from"] == first["cache_key"]
    assert pipeline.cache.answer(again["cache_from"])[1] == answer
    other = pipeline.prepare(body("hello", temperature=0), Identity(key_hash="k-bob")).record
    assert other["cache"] == "miss" and other["cache_key"] != first["cache_key"]  # another tenant's key


def test_a_client_that_asks_for_no_cache_is_not_looked_up_but_its_answer_is_stored(pipeline):
    admitted = pipeline.prepare(body("hello", temperature=0, cache={"no-cache": True}), ALICE)
    assert admitted.cacheable and admitted.record["cache"] == "off" and admitted.record["cache_key"]


def test_reasoning_controls_follow_the_route_unless_the_client_set_them(pipeline):
    admitted = pipeline.prepare(body("prove it"), ALICE)
    assert admitted.controls == {"reasoning_effort": "medium"} and admitted.record["reasoning_cap"] == 4000
    assert pipeline.prepare(body("prove it", reasoning_effort="low"), ALICE).controls == {}


def test_routing_refusals_have_no_record_and_budget_refusals_keep_theirs(pipeline):
    with pytest.raises(RequestRejected) as refused:
        pipeline.prepare({"model": "nope", "messages": []}, ALICE)
    assert not isinstance(refused.value, Refused) and refused.value.status == 400
    with pytest.raises(Refused) as over:  # its worst case is more than the tiny budget holds
        pipeline.prepare(body("hi", model="premium"), ALICE)
    refusal = over.value
    assert refusal.status == 429 and refusal.exceeded.budget.name == "tiny" and "Retry-After" in refusal.headers
    assert refusal.record["settled"] and refusal.record["target"] == "g-premium"
    assert refusal.message in refusal.record["reasons"]
    pipeline.accounting.ledger.flush()
    rejected = [r for r in records(pipeline.accounting.ledger.store) if r["outcome"] == "budget_rejected"]
    assert [(r["budget"], r["key"]) for r in rejected] == [("tiny", "k-alice")]


def test_a_held_model_with_no_other_is_refused_with_its_record(pipeline):
    pipeline.health.hold("g-small", 30)
    with pytest.raises(Refused) as held:
        pipeline.prepare(body("write an essay"), ALICE)
    assert held.value.status == 429 and held.value.record["route"] == "essay" and held.value.record["settled"]


def test_a_truncated_answer_is_retried_only_when_the_model_cut_it(pipeline):
    record = pipeline.prepare(body("write an essay"), ALICE).record
    decision = pipeline.truncated(record, {}, "length", 300, "g-small")
    assert (decision.route, decision.model, decision.target, decision.fallbacks) == ("essay", "big", "g-big", ())
    assert decision.reasons == ("'g-small' cut its answer off (finish_reason length): retried on 'big'",)
    assert pipeline.truncated(record, {}, "stop", 300, None) is None
    assert pipeline.truncated(record, {"max_tokens": 300}, "length", 300, None) is None  # the client's own limit
    assert pipeline.truncated(record, {"stream": True}, "length", 3, None) is None
    assert pipeline.truncated(record, {}, "length", 3, "g-big") is None  # already the larger model
    assert pipeline.truncated({**record, "route": "default"}, {}, "length", 3, None) is None
    retry = pipeline.admit_retry(record, decision, {}, "g-small")
    assert retry.record["truncated_on"] == "g-small" and identity_of(retry.record) == ALICE
    assert retry.attempt["model_group_retry_policy"] == {"g-big": {"RateLimitErrorRetries": 0}}


def test_the_ledger_record_says_what_each_budget_scope_counted_as_reserved():
    text = POLICY.replace("budgets:\n", "budgets:\n  - {name: team-day, per: team, limit_usd: 10, window: day}\n")
    policy = File(text)
    store = open_store("memory")
    accounting = Accounting(policy, BudgetBook(store), Ledger(store))
    pipeline = Pipeline(policy, Health(store, lambda: policy.current), accounting, None, Conversations(store))
    admitted = pipeline.prepare(body("hello"), ALICE)
    answer = {"usage": {"prompt_tokens": 1000, "completion_tokens": 500}, "choices": [{"message": {"content": "x"}}]}
    accounting.on_success(admitted.record, answer, "g-small", False, None, 0.2)
    (record,) = list(records(store))
    # 1500 tokens at 1 USD a million; the `tiny` budget is only for premium: it counted nothing.
    assert record["budgets"] == [["team-day", "t1", 0.0015, 1500.0, 0.0]]
