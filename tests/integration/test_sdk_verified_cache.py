"""A semantic cache whose hits a second model verifies (`semantic: {verify: minilm}`), through
`litellm.completion`: a near miss the static model alone would serve is refused, a reworded
question is still served, and the lookups run off the event loop."""

from __future__ import annotations

import litellm
import pytest

from tests.helpers import poll_until, sdk_installed, write_policy

STORED = [{"role": "user", "content": "Can I bring a laptop in my carry-on bag on a plane?"}]
NEAR_MISS = [{"role": "user", "content": "Can I bring a power bank in my carry-on bag on a plane?"}]
REWORDED = [{"role": "user", "content": "Is it allowed to pack a laptop in hand luggage for a flight?"}]


@pytest.fixture(scope="module")
def verified(simulator, tmp_path_factory):
    path = write_policy(tmp_path_factory.mktemp("verified"))
    text = path.read_text()
    assert "embedder: local}" in text
    path.write_text(text.replace("embedder: local}", "embedder: local, verify: minilm, verify_threshold: 0.80}"))
    with sdk_installed(simulator.url, path) as installed:
        yield installed


def cache_verdict(messages: list) -> str:
    return litellm.completion(model="auto", messages=messages, temperature=0)._hidden_params["router"]["cache"]


def test_the_second_model_refuses_a_near_miss_and_serves_a_rewording(verified, sim):
    cache = verified.runtime.cache
    assert cache.verifier is not None and cache.verifier.name == "all-MiniLM-L6-v2"
    assert verified.runtime.remote  # a model on torch is not run on the event loop
    assert cache_verdict(STORED) == "miss"
    poll_until(lambda: len(cache.index) >= 1, 10, "the cache write")
    # The static model scores the near miss 0.89 and would serve it; MiniLM scores it 0.69.
    assert cache_verdict(NEAR_MISS) == "miss"
    assert cache_verdict(REWORDED).startswith("semantic;score=")  # MiniLM: 0.88
    assert sim.count("deepseek-v4-flash") == 2
