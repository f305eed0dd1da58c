"""Routing decisions: the default policy's routes, explicit models, the context-window guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from router import CompiledPolicy, RequestRejected, load_policy, parse_policy, route_body

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = CompiledPolicy(load_policy(ROOT / "policies" / "examples" / "keywords-only.yaml"))  # routes by keyword


def ask(compiled, content, model="auto", **extra):
    return route_body(compiled, {"model": model, "messages": [{"role": "user", "content": content}], **extra})


@pytest.mark.parametrize(
    "prompt,route,target",
    [
        ("Please debug this code: x = 1/0", "reasoning", "deepseek-r1"),
        ("Explain step by step how TCP handshakes work", "reasoning", "deepseek-r1"),
        ("Prove that the square root of 2 is irrational", "reasoning", "deepseek-r1"),
        ("What is the capital of France?", "default", "deepseek-v4-flash"),
        ("Extract every date from this email", "extraction", "glm-4-plus"),
        ("Classify the sentiment of this review", "extraction", "glm-4-plus"),
        ("def add(a, b):\n    return a + b\n\nwhat does this do?", "code", "qwen3-32b"),
        ("Write a function that reverses a string", "code-request", "qwen3-32b"),
        ("Please translate this paragraph into French", "translation", "qwen3-32b"),
        ("Write a poem about autumn", "creative", "gpt-4o"),
        ("How do I improve my writing?", "default", "deepseek-v4-flash"),
    ],
)
def test_default_policy_routes(prompt, route, target):
    decision = ask(DEFAULT, prompt)
    assert (decision.route, decision.target) == (route, target), decision.reasons
    assert decision.reasons


def test_long_documents_go_to_the_large_window():
    decision = ask(DEFAULT, "lorem ipsum " * 20_000 + "summarize this")
    assert decision.route == "long-context" and decision.target == "deepseek-v4-pro"
    assert any("tokens >=" in r for r in decision.reasons)


def test_reasons_name_the_keyword_and_where_it_was_found():
    decision = ask(DEFAULT, "Please debug this code: x = 1/0")
    assert "'debug this code'" in decision.reason and "last user message" in decision.reason


def test_fallbacks_are_targets_in_order():
    decision = ask(DEFAULT, "hello")
    assert decision.fallbacks == ("deepseek-v4-pro", "qwen3-32b")


def test_only_the_last_user_message_counts_by_default():
    body = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You prove theorems."},
            {"role": "user", "content": "prove it"},
            {"role": "assistant", "content": "Done."},
            {"role": "user", "content": "thanks, what's the weather like?"},
        ],
    }
    assert route_body(DEFAULT, body).route == "default"


POLICY = """\
version: 1
settings: {auto_model: smart}
models:
  small: {target: small-group, context: 1k, aliases: [tiny]}
  mid: {target: mid-group, context: 4k}
  big: {target: big-group, context: 16k}
routes:
  - name: by-system
    when: {any: [pirate], messages: system}
    use: mid
  - name: all-of
    when: {all: [alpha, beta], none: [gamma]}
    use: mid
  - name: short-code
    when: {code: true, max_tokens: 200}
    use: small
  - name: default
    use: small
    fallbacks: [mid, big]
"""
SMALL = CompiledPolicy(parse_policy(POLICY, env={}))


def test_system_scope_and_the_auto_model_setting():
    body = {
        "model": "smart",
        "messages": [{"role": "system", "content": "Talk like a pirate"}, {"role": "user", "content": "hi"}],
    }
    assert route_body(SMALL, body).route == "by-system"


@pytest.mark.parametrize(
    "prompt,route",
    [
        ("alpha and beta", "all-of"),
        ("alpha only", "default"),
        ("alpha beta gamma", "default"),
        ("x = 1;\ny = 2;", "short-code"),
    ],
)
def test_all_none_and_code_conditions(prompt, route):
    assert ask(SMALL, prompt, model="smart").route == route


def test_context_guard_moves_to_the_first_fallback_that_fits():
    decision = ask(SMALL, "word " * 4000, model="smart")  # ~5000 tokens: too big for small (1k) and mid (4k)
    assert decision.target == "big-group" and decision.fallbacks == ()
    assert any("'small' holds 1000 tokens" in r for r in decision.reasons)


def test_context_guard_counts_max_tokens():
    decision = ask(SMALL, "word " * 400, model="smart", max_tokens=3000)  # ~500 + 3000
    assert decision.target == "mid-group" and decision.fallbacks == ("big-group",)


def test_context_guard_rejects_when_nothing_fits():
    with pytest.raises(RequestRejected) as caught:
        ask(SMALL, "word " * 20000, model="smart")
    assert caught.value.status == 400
    assert "context window" in caught.value.message and "big 16000" in caught.value.message


def test_a_policy_model_or_alias_is_served_as_asked():
    decision = ask(SMALL, "alpha and beta", model="tiny")
    assert (decision.route, decision.model, decision.target) == ("explicit", "small", "small-group")
    assert "alias of 'small'" in decision.reason


@pytest.mark.parametrize("model", ["gpt-4o", "openai/gpt-4o", "small-group "])
def test_a_model_name_unknown_to_the_policy_is_refused(model):
    with pytest.raises(RequestRejected) as caught:
        ask(SMALL, "alpha and beta", model=model)
    assert caught.value.status == 400
    assert "not in the routing policy" in caught.value.message and "small-group" in caught.value.message


def test_a_policy_that_allows_unlisted_models_passes_them_through():
    allowing = CompiledPolicy(
        SMALL.policy.model_copy(update={"settings": SMALL.settings.model_copy(update={"unlisted_models": "allow"})})
    )
    decision = ask(allowing, "alpha and beta", model="gpt-4o")
    assert (decision.route, decision.model, decision.target, decision.fallbacks) == ("explicit", None, "gpt-4o", ())


@pytest.mark.parametrize("unlisted", ["refuse", "allow"])
def test_a_list_of_models_is_refused_whatever_the_policy(unlisted):
    compiled = CompiledPolicy(
        SMALL.policy.model_copy(update={"settings": SMALL.settings.model_copy(update={"unlisted_models": unlisted})})
    )
    with pytest.raises(RequestRejected) as caught:
        ask(compiled, "alpha", model="small-group,mid-group")
    assert caught.value.status == 400 and "one model, not a list" in caught.value.message


@pytest.mark.parametrize(
    "field",
    [
        "fallbacks",
        "context_window_fallbacks",
        "specific_deployment",
        "mock_response",
        "mock_testing_rate_limit_error",
        "api_base",
        "api_key",
        "custom_llm_provider",
    ],
)
def test_fields_the_policy_owns_are_refused(field):
    with pytest.raises(RequestRejected) as caught:
        ask(SMALL, "alpha", model="smart", **{field: ["small-group"]})
    assert caught.value.status == 400 and f"`{field}`" in caught.value.message


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_the_body_shape_is_bounded_by_the_policy_limits():
    limits = SMALL.settings.limits
    many = [{"role": "user", "content": "hi"}] * (limits.max_messages + 1)
    with pytest.raises(RequestRejected, match="max_messages") as caught:
        route_body(SMALL, {"model": "smart", "messages": many})
    assert caught.value.status == 413
    parts = [{"type": "text", "text": "hi"}] * (limits.max_parts + 1)
    with pytest.raises(RequestRejected, match="max_parts"):
        ask(SMALL, parts, model="smart")
    # The body is depth 1, messages 2, a message 3, its content 4, a part 5, so `extra` may hold depth - 5 more.
    ask(SMALL, [{"type": "text", "text": "hi", "extra": nested(limits.max_depth - 5)}], model="smart")
    with pytest.raises(RequestRejected, match=r"more than 32 deep \(at \.\.\.\[0\]") as caught:
        ask(SMALL, [{"type": "text", "text": "hi", "extra": nested(limits.max_depth - 4)}], model="smart")
    assert caught.value.status == 400
    with pytest.raises(RequestRejected, match="max_depth"):  # far past Python's recursion limit
        ask(SMALL, [{"type": "text", "text": "hi", "extra": nested(100_000)}], model="smart")


@pytest.mark.parametrize(
    "body,status,fragment",
    [
        ({"model": "smart"}, 400, "`messages` is required"),
        ({"model": "smart", "messages": "hi"}, 400, "must be a list"),
        ({"model": "smart", "messages": []}, 400, "must not be empty"),
        (
            {"model": "smart", "messages": [{"content": "hi"}]},
            400,
            "messages[0] must be an object with a string `role`",
        ),
        ({"model": "smart", "messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content must be a string"),
        ({"model": "smart", "messages": [{"role": "user", "content": ["x"]}]}, 400, "content[0] must be an object"),
        (
            {"model": "smart", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "9"},
            400,
            "`max_tokens` must be a positive integer",
        ),
        ({"messages": [{"role": "user", "content": "hi"}]}, 400, "`model` is required"),
        ("not an object", 400, "must be a JSON object"),
    ],
)
def test_malformed_requests_are_rejected_with_a_reason(body, status, fragment):
    with pytest.raises(RequestRejected) as caught:
        route_body(SMALL, body)
    assert caught.value.status == status and fragment in caught.value.message


def test_a_huge_prompt_is_refused_with_413():
    with pytest.raises(RequestRejected) as caught:
        ask(DEFAULT, "x" * 2_000_001)
    assert caught.value.status == 413 and "max_prompt_chars" in caught.value.message


def test_content_parts_are_read():
    body = {
        "model": "auto",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Write a poem"}, {"type": "image_url", "image_url": {"url": "x"}}],
            }
        ],
    }
    assert route_body(DEFAULT, body).route == "creative"


def test_a_request_for_several_answers_says_how_many():
    assert ask(SMALL, "alpha", model="smart", n=3).answers == 3
    assert ask(SMALL, "alpha", model="smart").answers == 1
