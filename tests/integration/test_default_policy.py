"""The default policy routes by meaning: its learned classifier (policies/default.classifier.npz,
from data/routing/train.jsonl) names the route of prompts that hold none of its keywords, in
English and Chinese, through `route_body` and through `litellm.completion`."""

from __future__ import annotations

import litellm
import pytest

from router import CompiledPolicy, load_policy, route_body
from router.cache.embedders import Shared, StaticEmbedder
from tests.helpers import DEFAULT, sdk_installed, write_policy

PARAPHRASES = [
    ("Show that the square root of 2 is irrational", "reasoning", "deepseek-r1"),
    ("My script crashes with a KeyError when it reads the config file, what is wrong?", "code", "qwen3-32b"),
    ("Compose a short poem about the moon over the harbour", "creative", "gpt-4o"),
    ("Pull every phone number out of this text: call 555-0100 or 555-0199", "extraction", "glm-4-plus"),
    ("hello there, how is your day going?", "default", "deepseek-v4-flash"),
    ("证明根号3是无理数", "reasoning", "deepseek-r1"),
    ("帮我写一个快速排序的Python函数", "code", "qwen3-32b"),
]


@pytest.fixture(scope="module")
def compiled() -> CompiledPolicy:
    return CompiledPolicy(load_policy(DEFAULT), Shared(StaticEmbedder()))


@pytest.mark.parametrize(("prompt", "route", "target"), PARAPHRASES)
def test_prompts_without_keywords_are_routed_by_meaning(compiled, prompt, route, target):
    decision = route_body(compiled, {"model": "auto", "messages": [{"role": "user", "content": prompt}]})
    assert (decision.route, decision.target) == (route, target)
    if route != "default":
        assert decision.reasons[0].startswith(f"classified as '{route}' (p ")


def test_a_doubtful_creative_verdict_stays_off_the_dearest_model(compiled):
    """creative asks for 95 % precision: a summary the classifier half calls creative goes elsewhere."""
    prompt = "Summarize the main trade-offs between renting and buying a home for a young family in a large city."
    decision = route_body(compiled, {"model": "auto", "messages": [{"role": "user", "content": prompt}]})
    assert decision.target != "gpt-4o"


def test_the_sdk_routes_by_meaning(simulator, sim, tmp_path):
    with sdk_installed(simulator.url, write_policy(tmp_path, source=DEFAULT)):
        prompt = [{"role": "user", "content": "Show that the square root of 2 is irrational"}]
        response = litellm.completion(model="auto", messages=prompt)
    decision = response._hidden_params["router"]
    assert decision["route"] == "reasoning" and decision["target"] == "deepseek-r1"
    assert decision["reasons"][0].startswith("classified as 'reasoning'")
    assert sim.count("deepseek-reasoner") == 1  # what config.yaml calls the group upstream
