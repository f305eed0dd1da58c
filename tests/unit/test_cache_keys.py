"""Cache keys: canonical, scoped per tenant, split by every parameter that changes the answer."""

from __future__ import annotations

from router import Identity
from router.cache import keys

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is TCP?"}]
ALICE = Identity(key_hash="k-alice", team="blue")
BOB = Identity(key_hash="k-bob", team="blue")


def test_key_order_does_not_change_the_key():
    reordered = [{"content": "Be brief.", "role": "system"}, {"content": "What is TCP?", "role": "user"}]
    assert keys.exact_key("s", "r", MESSAGES, {"temperature": 0, "seed": 1}) == keys.exact_key(
        "s", "r", reordered, {"seed": 1, "temperature": 0}
    )


def test_every_answer_changing_part_changes_the_key():
    base = keys.exact_key("s", "r", MESSAGES, {"temperature": 0})
    others = [
        keys.exact_key("other-scope", "r", MESSAGES, {"temperature": 0}),
        keys.exact_key("s", "other-route", MESSAGES, {"temperature": 0}),
        keys.exact_key("s", "r", MESSAGES[1:], {"temperature": 0}),  # the system prompt counts
        keys.exact_key("s", "r", MESSAGES, {"temperature": 0, "max_tokens": 10}),
        keys.exact_key("s", "r", MESSAGES, {"temperature": 0, "tools": [{"type": "function"}]}),
    ]
    assert base not in others and len(set(others)) == len(others)


def test_only_answer_changing_parameters_are_kept():
    request = {"temperature": 0, "stream": True, "metadata": {"x": 1}, "user": "u", "stop": ["\n"], "seed": None}
    assert keys.answer_params(request) == {"temperature": 0, "stop": ["\n"]}


def test_scopes():
    assert keys.scope_of(ALICE, "key") != keys.scope_of(BOB, "key")
    assert keys.scope_of(ALICE, "team") == keys.scope_of(BOB, "team") == "team:blue"
    assert keys.scope_of(Identity(key_hash="k"), "team") == "key:k"  # no team: never shared by accident
    assert keys.scope_of(ALICE, "shared") == keys.scope_of(BOB, "shared")


def test_the_partition_holds_everything_but_the_last_question():
    later = MESSAGES[:-1] + [{"role": "user", "content": "Explain TCP"}]
    assert keys.partition_key("s", "r", MESSAGES, {}) == keys.partition_key("s", "r", later, {})
    other_history = [{"role": "system", "content": "Be verbose."}, MESSAGES[1]]
    assert keys.partition_key("s", "r", MESSAGES, {}) != keys.partition_key("s", "r", other_history, {})


def test_semantic_text():
    assert keys.semantic_text(MESSAGES) == "What is TCP?"
    assert keys.semantic_text([{"role": "assistant", "content": "hi"}]) is None
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": {}}]}
    ]
    assert keys.semantic_text(parts) is None


def test_deterministic_and_complete():
    assert keys.is_deterministic({"temperature": 0}) and keys.is_deterministic({"seed": 7, "temperature": 1})
    assert not keys.is_deterministic({}) and not keys.is_deterministic({"temperature": 0.7})
    assert keys.is_complete({"choices": [{"finish_reason": "stop"}]})
    assert not keys.is_complete({"choices": [{"finish_reason": "length"}]})
    assert not keys.is_complete({"choices": [{"finish_reason": "content_filter"}]})
    assert not keys.is_complete({"choices": []})
