"""The simulator is our own code: its switches must do what the tests and benchmarks rely on."""

from __future__ import annotations

import time

import httpx
import pytest


def chat(sim, model="m1", **extra) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **extra}
    return sim.http.post("/v1/chat/completions", json=body)


def test_answers_are_deterministic_and_counted(sim):
    first, second = chat(sim).json(), chat(sim).json()
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    assert first["choices"][0]["message"]["content"].startswith("[m1#")
    assert sim.count("m1") == 2 and sim.count("m1", "ok") == 2


def test_reasoning_tokens_and_content(sim):
    sim.set_profile("r1", reasoning_tokens=30, output_tokens=10)
    body = chat(sim, "r1").json()
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 30
    assert body["usage"]["completion_tokens"] == 40
    assert len(body["choices"][0]["message"]["reasoning_content"].split()) == 30
    sim.set_profile("r1", reasoning_usage=False)
    assert "completion_tokens_details" not in chat(sim, "r1").json()["usage"]


def test_errors_and_rate_limits(sim):
    sim.set_profile("bad", error_rate=1.0)
    assert chat(sim, "bad").status_code == 500
    sim.set_profile("busy", rate_limit_rate=1.0, retry_after=7)
    response = chat(sim, "busy")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert sim.count("bad", "errors") == 1 and sim.count("busy", "rate_limited") == 1


def test_truncation_and_max_tokens(sim):
    assert chat(sim, max_tokens=5).json()["choices"][0]["finish_reason"] == "length"
    sim.set_profile("cut", truncate=True)
    assert chat(sim, "cut").json()["choices"][0]["finish_reason"] == "length"


def test_context_window(sim):
    sim.set_profile("tiny", context=10)
    response = sim.http.post(
        "/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": "x" * 100}]}
    )
    assert response.status_code == 400 and "context" in response.json()["error"]["type"]


def test_latency_is_applied(sim):
    sim.set_profile("slow", latency_ms=300)
    start = time.monotonic()
    chat(sim, "slow")
    assert time.monotonic() - start >= 0.3


def test_streaming_with_usage_and_reasoning(sim):
    sim.set_profile("r1", reasoning_tokens=3, output_tokens=4)
    body = {
        "model": "r1",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with sim.http.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    import json

    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    reasoning = [c for c in chunks if c["choices"] and "reasoning_content" in c["choices"][0]["delta"]]
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(reasoning) == 3 and len(content) == 4
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert sim.count("r1", "streams") == 1


def test_embeddings(sim):
    body = sim.http.post("/v1/embeddings", json={"model": "emb", "input": ["a", "b"]}).json()
    assert len(body["data"]) == 2 and len(body["data"][0]["embedding"]) == 384


def test_profile_changes_are_validated(sim):
    assert sim.http.put("/admin/profiles/x", json={"latency": 1}).status_code == 400


@pytest.mark.parametrize("path", ["/admin/requests?model=m1"])
def test_request_bodies_are_kept(sim, path):
    chat(sim, temperature=0.5)
    assert sim.requests_for("m1")[-1]["temperature"] == 0.5
