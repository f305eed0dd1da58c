"""A semantic cache whose embedding model file is missing: one clear error at start-up, and the
SDK serves every request, with the exact tier still answering repeats."""

from __future__ import annotations

import logging

import litellm
import pytest
from upstreams import PROVIDER_VARS

import router
from tests.helpers import ROOT, poll_until, simulator_env, write_policy


@pytest.fixture
def without_model(simulator, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ROUTER_DATA_DIR", str(tmp_path / "empty"))
    for key in PROVIDER_VARS:
        monkeypatch.delenv(key, raising=False)
    for key, value in simulator_env(f"{simulator.url}/v1").items():
        monkeypatch.setenv(key, value)
    caplog.set_level(logging.INFO, logger="router")
    return router.install(write_policy(tmp_path), config=ROOT / "config.yaml", watch=False)


def test_a_missing_model_turns_the_semantic_tier_off_and_nothing_fails(without_model, sim, caplog):
    errors = [r.getMessage() for r in caplog.get_records("setup") if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "semantic tier off" in errors[0] and "python -m router embedder build" in errors[0]
    assert without_model.runtime.cache is not None and without_model.runtime.cache.embedder is None
    question = [{"role": "user", "content": "What is the boiling point of water at sea level?"}]
    reworded = [{"role": "user", "content": "At sea level, what is the boiling point of water?"}]
    first = litellm.completion(model="auto", messages=question, temperature=0)
    assert first._hidden_params["router"]["cache"] == "miss"
    poll_until(lambda: len(without_model.runtime.cache.lru) >= 1, 10, "the cache write")
    assert litellm.completion(model="auto", messages=question, temperature=0)._hidden_params["router"]["cache"] == (
        "exact"
    )
    other = litellm.completion(model="auto", messages=reworded, temperature=0)
    assert other._hidden_params["router"]["cache"] == "miss" and other.choices[0].message.content
    assert sim.count("deepseek-v4-flash") == 2
