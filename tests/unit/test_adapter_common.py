"""The pipeline's verdict written into LiteLLM's request shapes, its record read back from each shape
LiteLLM hands us, and the decision rendered as headers."""

from __future__ import annotations

from router import Decision, Identity
from router.adapter.common import apply_admitted, decision_headers, record_of, retry_call
from router.engine import Admitted
from router.engine.record import new_record

DECISION = Decision(
    "reasoning", "reasoner", "deepseek-r1", ("deepseek-v4-pro", "deepseek-v4-flash"), ("keyword 'prove'",), 12
)


def admitted(cacheable: bool = False, **cache) -> Admitted:
    """`cache`: what the pipeline's lookup wrote into the record (cache, cache_key, cache_from)."""
    record = new_record(DECISION, Identity(key_hash="k"))
    record.update(cache)
    return Admitted(DECISION, record, {"num_retries": 1}, {"reasoning_effort": "low"}, cacheable)


def test_apply_points_the_request_at_the_target_with_ordered_fallbacks():
    data = {"model": "auto", "messages": [], "metadata": {"user_tag": "x"}}
    verdict = admitted()
    apply_admitted(verdict, data)
    assert data["model"] == "deepseek-r1"
    assert data["fallbacks"] == [{"deepseek-r1": ["deepseek-v4-pro", "deepseek-v4-flash"]}]
    assert data["metadata"]["user_tag"] == "x"  # the client's metadata is kept
    assert (data["num_retries"], data["reasoning_effort"]) == (1, "low")
    assert record_of(data) is verdict.record and data["cache"] == {"no-store": True}


def test_without_a_router_fallbacks_are_a_plain_list_and_attempts_are_litellms_own():
    call = {"messages": []}
    apply_admitted(admitted(), call, router=False)
    assert call["fallbacks"] == ["deepseek-v4-pro", "deepseek-v4-flash"] and "num_retries" not in call


def test_a_miss_opts_in_to_the_store_under_the_pipelines_key_and_skips_litellms_lookup():
    data = {"model": "auto", "cache": {"no-store": False}}
    apply_admitted(admitted(True, cache="miss", cache_key="k1"), data)
    assert data["cache"] == {"no-store": False, "use-cache": True}  # the client's own controls are kept
    assert data["cache_key"] == "k1" and data["caching"] is False


def test_a_hit_leaves_litellms_lookup_on_to_serve_it():
    data = {"model": "auto", "caching": False}  # a retry's call copies the first call's switch
    apply_admitted(admitted(True, cache="exact", cache_key="k1", cache_from="k1"), data)
    assert data["cache"] == {"use-cache": True} and data["cache_key"] == "k1" and "caching" not in data


def test_a_request_the_policy_does_not_cache_skips_the_cache_whole():
    data = {"model": "auto", "cache": {"use-cache": True}}  # the client asking does not change it
    apply_admitted(admitted(False, cache="off"), data)
    assert data["caching"] is False and "cache_key" not in data
    # Nor is its answer offered to the store (LiteLLM would serialise it before our backend refused it).
    assert data["cache"] == {"use-cache": True, "no-store": True}


def test_a_retrys_cache_controls_are_its_own():
    data = {"model": "auto", "messages": [], "litellm_call_id": "c1"}
    apply_admitted(admitted(False, cache="off"), data)
    again = retry_call(data, admitted(False, cache="off"))
    again["cache"]["use-cache"] = True
    assert data["cache"] == {"no-store": True}


def test_the_proxy_metadata_key_is_respected():
    data = {"model": "auto", "litellm_metadata": {}}
    apply_admitted(admitted(), data)
    assert data["litellm_metadata"]["router"]["route"] == "reasoning" and "metadata" not in data


def test_a_client_cannot_break_the_metadata_field():
    data = {"model": "auto", "metadata": "not a dict"}
    apply_admitted(admitted(), data)
    assert record_of(data)["target"] == "deepseek-r1"


def test_the_record_is_found_in_a_logging_event():
    record = new_record(DECISION, Identity())
    assert record_of({"litellm_params": {"metadata": {"router": record}}}) is record
    assert record_of({"litellm_params": {"litellm_metadata": {"router": record}}}) is record
    assert record_of({"litellm_params": None, "metadata": {"user": "x"}}) is None


def test_a_retry_is_a_call_of_its_own_with_its_own_record():
    data = {"model": "auto", "messages": [], "metadata": {"user_tag": "x"}, "litellm_call_id": "c1"}
    first = admitted()
    apply_admitted(first, data)
    again = retry_call(data, admitted())
    assert "litellm_call_id" not in again and again["metadata"]["user_tag"] == "x"
    assert record_of(again) is not first.record and record_of(data) is first.record


def test_headers_are_single_line_ascii():
    decision = Decision("r", None, "m", (), ("keyword '证明' in\nthe last user message",), 1)
    headers = decision_headers(new_record(decision, Identity()))
    assert headers["x-router-reason"] == "keyword '\\u8bc1\\u660e' in the last user message"
    assert headers["x-router-route"] == "r" and headers["x-router-model"] == "m"
