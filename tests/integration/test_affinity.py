"""Conversation affinity in the pipeline, on a shared SQLite file: later turns keep the first
turn's route and model across instances; an explicit model, the context guard, a shift and a
session id behave as the policy says; the store holds no prompt; an outage routes afresh."""

from __future__ import annotations

import time

import pytest

from router import CompiledPolicy, Identity, parse_policy
from router.core.conversation import conversation_of
from router.core.decide import route_body
from router.engine.accounting import Accounting
from router.engine.affinity import PREFIX, Conversations
from router.engine.budget_book import BudgetBook
from router.engine.health import Health
from router.engine.ledger import Ledger
from router.engine.pipeline import Pipeline
from router.state import StoreUnavailable, open_store

POLICY = """
version: 1
models:
  flash: {target: g-flash, context: 8k}
  coder: {target: g-coder, context: 2k}
  big: {target: g-big, context: 128k}
routes:
  - {name: code, when: {any: [traceback, debug]}, use: coder, fallbacks: [big]}
  - {name: default, use: flash, fallbacks: [big]}
affinity: {ttl: 30m}
state: {backend: memory}
"""
ALICE = Identity(key_hash="k-alice", team="t1")
BOB = Identity(key_hash="k-bob", team="t1")
OPENING = [
    {"role": "system", "content": "You help with Python."},
    {"role": "user", "content": "Debug this: my script prints a traceback on line 3."},
]


class File:
    def __init__(self, text: str):
        self.current = CompiledPolicy(parse_policy(text))


def instance(store, text: str = POLICY) -> Pipeline:
    policy = File(text)
    health = Health(store, lambda: policy.current)
    return Pipeline(policy, health, Accounting(policy, BudgetBook(store), Ledger(store)), None, Conversations(store))


@pytest.fixture
def store(tmp_path):
    made = open_store("sqlite", path=str(tmp_path / "state.db"))
    yield made
    made.close()


def turns(*replies_and_asks: str) -> list[dict]:
    """The opening, then alternating assistant answers and user follow-ups."""
    messages = list(OPENING)
    for i, text in enumerate(replies_and_asks):
        messages.append({"role": "assistant" if i % 2 == 0 else "user", "content": text})
    return messages


def ask(pipeline: Pipeline, messages: list[dict], who: Identity = ALICE, **extra):
    admitted = pipeline.prepare({"model": "auto", "messages": messages, **extra}, who)
    return admitted.decision, admitted.record


def test_later_turns_keep_the_first_turns_model_on_another_instance(store):
    first, second = instance(store), instance(store)
    decision, record = ask(first, OPENING)
    assert (decision.route, decision.target, record["affinity"]) == ("code", "g-coder", "started")
    first.conversations.flush()  # the writer thread's step
    decision, record = ask(second, turns("Line 3 divides by zero.", "ok now fix it"))
    assert (decision.route, decision.target, record["affinity"]) == ("code", "g-coder", "kept")
    assert "conversation affinity: turn 2 stays on route 'code'" in decision.reason
    assert decision.fallbacks == ("g-big",)
    second.conversations.flush()
    decision, record = ask(first, turns("Line 3 divides by zero.", "ok now fix it", "Done.", "thanks, and now?"))
    assert (decision.target, record["affinity"]) == ("g-coder", "kept")
    assert "turn 3" in decision.reason


def test_the_same_instance_reads_its_own_waiting_write(store):
    pipeline = instance(store)
    ask(pipeline, OPENING)
    decision, record = ask(pipeline, turns("Line 3 divides by zero.", "ok now fix it"))
    assert (decision.target, record["affinity"]) == ("g-coder", "kept")


def test_another_sender_with_the_same_opening_is_another_conversation(store):
    pipeline = instance(store)
    ask(pipeline, OPENING, ALICE)
    decision, record = ask(pipeline, turns("Line 3 divides by zero.", "ok now fix it"), BOB)
    assert (decision.target, record["affinity"]) == ("g-flash", "started")  # routed afresh: no keyword


def test_an_explicit_model_is_served_and_leaves_the_conversation_alone(store):
    pipeline = instance(store)
    ask(pipeline, OPENING)
    admitted = pipeline.prepare({"model": "big", "messages": turns("Line 3.", "ok now fix it")}, ALICE)
    assert admitted.decision.target == "g-big" and "affinity" not in admitted.record
    decision, _ = ask(pipeline, turns("Line 3.", "ok now fix it", "x", "and now?"))
    assert decision.target == "g-coder"


def test_the_context_guard_overrides_affinity(store):
    pipeline = instance(store)
    ask(pipeline, OPENING)
    long_reply = "word " * 3000  # ~3K tokens: more than the coder's 2K window
    decision, record = ask(pipeline, turns(long_reply, "ok now fix it"))
    assert decision.target != "g-coder" and record["affinity"] == "started"


def test_a_shift_moves_a_kept_turn_and_the_conversation_returns_after(store):
    pipeline = instance(store)
    ask(pipeline, OPENING)
    pipeline.health.held["g-coder"] = time.time() + 60  # as a provider's retry-after holds it
    decision, record = ask(pipeline, turns("Line 3.", "ok now fix it"))
    assert decision.target == "g-big" and decision.shifted_from == "g-coder" and record["affinity"] == "kept"
    pipeline.health.held.clear()
    decision, _ = ask(pipeline, turns("Line 3.", "ok now fix it", "x", "and now?"))
    assert decision.target == "g-coder"


def test_a_session_id_in_metadata_names_the_conversation(store):
    pipeline = instance(store)
    ask(pipeline, OPENING, metadata={"session_id": "s-1"})
    other_opening = [{"role": "user", "content": "hello there"}]
    decision, record = ask(pipeline, other_opening, metadata={"session_id": "s-1"})
    assert (decision.target, record["affinity"]) == ("g-coder", "kept")
    assert "by session" in decision.reason


def test_without_the_section_every_turn_is_routed_afresh(store):
    pipeline = instance(store, POLICY.replace("affinity: {ttl: 30m}\n", ""))
    ask(pipeline, OPENING)
    decision, record = ask(pipeline, turns("Line 3.", "ok now fix it"))
    assert decision.target == "g-flash" and "affinity" not in record


def test_the_store_holds_hashes_and_routes_never_the_prompt(store):
    pipeline = instance(store)
    ask(pipeline, OPENING)
    pipeline.conversations.flush()
    conversation = conversation_of({"messages": OPENING}, ALICE, ("session_id",))
    value = store.get(PREFIX + conversation.key)
    assert value is not None and b"traceback" not in value and b'"route": "code"' in value


class DownStore:
    """A store whose every call fails, as Redis does during an outage."""

    def get(self, key):
        raise StoreUnavailable("down")

    def set_many(self, items):
        raise StoreUnavailable("down")


def test_an_outage_routes_afresh_and_keeps_the_writes_for_later(caplog):
    conversations = Conversations(DownStore())  # type: ignore[arg-type]
    compiled = File(POLICY).current
    later = turns("Line 3.", "ok now fix it")
    decision, what = conversations.steer(compiled, {"messages": later}, ALICE, _decide(compiled, later))
    assert (decision.target, what) == ("g-flash", "started")
    conversations.flush()
    assert "state store took no writes" in caplog.text or "unreachable" in caplog.text
    assert len(conversations._waiting) == 1  # kept for the next flush


def _decide(compiled, messages):
    return route_body(compiled, {"model": "auto", "messages": messages})
