"""What a capture keeps of a request (router.engine.capture), how recorded lines of each shape become
requests to replay (router.ops.recorded), and the CI gate's conditions (router.ops.policy_diff)."""

from __future__ import annotations

import json

import pytest

from router import Identity
from router.engine.capture import captured
from router.ops.policy_diff import failed, parse_condition
from router.ops.recorded import read_traffic
from router.policy.observe import CaptureConfig

ALICE = Identity(key_hash="k-alice", team="t1", user="u1", tags=("eu",), key_alias="alice")
BODY = {
    "model": "auto",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "mail bob@example.com or alice@example.org"}]},
        {"role": "user", "content": "my email is carol@example.net"},
    ],
    "temperature": 0,
    "tools": [{"type": "function", "function": {"name": "f"}}],
    "metadata": {"session_id": "s-1", "user_api_key_hash": "added by the proxy"},
    "proxy_server_request": {"body": "everything again"},
    "litellm_call_id": "c-1",
}


def test_nothing_is_kept_unless_the_policy_captures_prompts():
    assert captured(CaptureConfig(), BODY, ALICE) is None


def test_a_capture_keeps_the_messages_parameters_session_and_sender_and_nothing_the_proxy_added():
    kept = captured(CaptureConfig(prompts=True), BODY, ALICE, ("session_id",))
    assert kept is not None and kept["body"] == {
        "model": "auto",
        "messages": BODY["messages"],
        "temperature": 0,
        "tools": BODY["tools"],
        "metadata": {"session_id": "s-1"},
    }
    assert kept["identity"] == {
        "key_hash": "k-alice",
        "team": "t1",
        "user": "u1",
        "tags": ["eu"],
        "key_alias": "alice",
        "metadata": [],
    }
    assert "redacted" not in kept


def test_redaction_replaces_every_match_in_text_and_in_parts_and_counts_them():
    config = CaptureConfig(prompts=True, redact=(r"[\w.]+@[\w.]+", r"\bBe\b"))
    kept = captured(config, BODY, ALICE)
    assert kept is not None
    messages = kept["body"]["messages"]
    assert messages[0]["content"] == "[redacted] brief."
    assert messages[1]["content"][0]["text"] == "mail [redacted] or [redacted]"
    assert messages[2]["content"] == "my email is [redacted]"
    assert kept["redacted"] == 4
    assert BODY["messages"][2]["content"] == "my email is carol@example.net"  # the request itself is untouched


def test_a_sample_keeps_the_share_it_names():
    draws = iter([0.05, 0.5, 0.09, 0.99])
    config = CaptureConfig(prompts=True, sample=0.1)
    kept = [captured(config, BODY, ALICE, draw=lambda: next(draws)) is not None for _ in range(4)]
    assert kept == [True, False, True, False]


def test_a_bad_redaction_expression_is_a_policy_error():
    with pytest.raises(ValueError, match="is not a regular expression"):
        CaptureConfig(prompts=True, redact=("([unclosed",))


def test_litellm_payloads_and_spend_logs_become_requests_with_their_sender_usage_and_latency(tmp_path):
    payload = {
        "call_type": "acompletion",
        "model": "deepseek/deepseek-reasoner",
        "model_group": "deepseek-r1",
        "messages": [{"role": "user", "content": "prove it"}],
        "model_parameters": {"temperature": 0.2, "max_tokens": 100},
        "prompt_tokens": 12,
        "completion_tokens": 40,
        "response": {"usage": {"completion_tokens_details": {"reasoning_tokens": 30}}},
        "response_cost": 0.00002,
        "startTime": 1796000000.0,
        "endTime": 1796000002.5,
        "status": "failure",
        "metadata": {"user_api_key_hash": "h1", "user_api_key_team_id": "t1", "user_api_key_alias": "ci"},
        "request_tags": ["batch"],
    }
    spend_log = {
        "request_id": "r-1",
        "call_type": "completion",
        "api_key": "h2",
        "spend": 0.5,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "startTime": "2026-11-30T00:53:20.000Z",
        "endTime": "2026-11-30T00:53:21",
        "model_group": "gpt-4o",
        "user": "",
        "team_id": "t2",
        "metadata": json.dumps({"user_api_key_alias": "web"}),
        "request_tags": json.dumps(["ui"]),
        "messages": "[]",
        "proxy_server_request": json.dumps(
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "seed": 7}
        ),
        "status": "success",
    }
    path = tmp_path / "logs.jsonl"
    path.write_text(json.dumps(payload) + "\n" + json.dumps(spend_log) + "\n")
    first, second = read_traffic([path], "auto").items
    assert first.body == {"temperature": 0.2, "max_tokens": 100, "model": "auto", "messages": payload["messages"]}
    assert first.identity == Identity(key_hash="h1", team="t1", tags=("batch",), key_alias="ci")
    assert first.usage == {
        "completion_tokens_details": {"reasoning_tokens": 30},
        "prompt_tokens": 12,
        "completion_tokens": 40,
    }
    assert (first.target, first.latency, first.outcome, first.cost_usd) == ("deepseek-r1", 2.5, "error", 0.00002)
    assert second.body == {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "seed": 7}
    assert second.identity == Identity(key_hash="h2", team="t2", tags=("ui",), key_alias="web")
    assert (second.t, second.latency, second.cost_usd) == (1796000000.0, 1.0, 0.5)
    kept = read_traffic([path], None).items
    assert [i.body["model"] for i in kept] == ["deepseek-r1", "gpt-4o"]  # --as-recorded


FIGURES = {
    "requests": 200,
    "moved": {"count": 30, "share": 0.15},
    "cost_usd": {"old": 10.0, "new": 10.4, "delta": 0.4, "percent": 4.0},
    "cache_hits": {"old": 50, "new": 40, "delta": -10, "percent": -20.0},
    "rejected": {"old": 0, "new": 4, "delta": 4, "percent": None},
    "budgets_newly_hit": [{"budget": "b"}],
}


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ("cost > +5%", False),
        ("cost > +3%", True),
        ("cost > 0.5", False),
        ("cost >= 0.4", True),
        ("moved > 10%", True),
        ("moved > 30", False),
        ("cache_hits < -10%", True),
        ("cache_hits < -10", False),
        ("rejected > 1%", True),
        ("rejected > 4", False),
        ("budgets > 0", True),
    ],
)
def test_a_condition_holds_when_its_figure_passes_it(condition, holds):
    assert bool(failed([parse_condition(condition)], FIGURES)) is holds


@pytest.mark.parametrize(
    ("text", "why"),
    [("cost is high", "write <metric> <op>"), ("spend > 5%", "unknown metric 'spend'"), ("budgets > 5%", "a count")],
)
def test_a_bad_condition_says_what_is_wrong(text, why):
    with pytest.raises(ValueError, match=why):
        parse_condition(text)
