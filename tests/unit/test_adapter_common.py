"""Recording a decision in the request and rendering it as headers (pure: no litellm import)."""

from __future__ import annotations

from router import Decision
from router.adapter.common import apply_decision, decision_headers, decision_of

DECISION = Decision("reasoning", "reasoner", "deepseek-r1", ("deepseek-v4-pro", "deepseek-v4-flash"), ("keyword 'prove'",), 12)


def test_apply_points_the_request_at_the_target_with_ordered_fallbacks():
    data = {"model": "auto", "messages": [], "metadata": {"user_tag": "x"}}
    apply_decision(DECISION, data)
    assert data["model"] == "deepseek-r1"
    assert data["fallbacks"] == [{"deepseek-r1": ["deepseek-v4-pro", "deepseek-v4-flash"]}]
    assert data["metadata"]["user_tag"] == "x"  # the client's metadata is kept
    assert decision_of(data) == DECISION.as_dict()


def test_the_proxy_metadata_key_is_respected():
    data = {"model": "auto", "litellm_metadata": {}}
    apply_decision(DECISION, data)
    assert data["litellm_metadata"]["router"]["route"] == "reasoning" and "metadata" not in data


def test_a_client_cannot_break_the_metadata_field():
    data = {"model": "auto", "metadata": "not a dict"}
    apply_decision(DECISION, data)
    assert decision_of(data)["target"] == "deepseek-r1"


def test_headers_are_single_line_ascii():
    decision = Decision("r", None, "m", (), ("keyword '证明' in\nthe last user message",), 1)
    headers = decision_headers(decision.as_dict())
    assert headers["x-router-reason"] == "keyword '\\u8bc1\\u660e' in the last user message"
    assert headers["x-router-route"] == "r" and headers["x-router-model"] == "m"
