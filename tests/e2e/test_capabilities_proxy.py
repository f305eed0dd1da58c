"""Routes that see who asks and what the request needs, through a real proxy process with tenant keys
(issue 14): images reach the model that sees, tools requests never reach a model without tools (not
even as a fallback), a free-tier key cannot name the premium model, and a team pinned to a region
stays there while a shift of its region moves everyone else's traffic to another one."""

from __future__ import annotations

import io
import json

import httpx
import openai
import pytest

from router.ops.cli import main
from tests.helpers import MASTER_KEY, auth_config, poll_until, start_proxy

pytestmark = pytest.mark.e2e
FLASH, PRO, QWEN, GLM, GPT4O = "deepseek-v4-flash", "deepseek-v4-pro", "qwen3-32b", "glm-4-plus", "gpt-4o"
KEYS = [
    {"key": "sk-free", "team": "hobby", "tags": ["free"]},
    {"key": "sk-eu", "team": "eu-legal", "alias": "eu-legal-bot"},
]
POLICY = """
version: 1
settings: {retries: 0, timeout: 10s}
models:
  flash: {target: deepseek-v4-flash, context: 128k, capabilities: [json], region: us}
  pro: {target: deepseek-v4-pro, context: 200k, capabilities: [tools, json], region: us}
  qwen: {target: qwen3-32b, context: 32k, capabilities: [tools, json], region: eu}
  glm: {target: glm-4-plus, context: 128k, capabilities: [json], region: eu}
  seer: {target: gpt-4o, context: 128k, capabilities: [vision, tools, json_schema], region: us, aliases: [premium]}
access:
  - {name: free-tier, who: {tags: [free]}, deny: [seer]}
  - {name: eu-residency, who: {teams: [eu-legal]}, regions: [eu]}
routes:
  - {name: vision, when: {images: true}, use: seer}
  - {name: agents, when: {tools: true}, use: pro, fallbacks: [flash, qwen]}
  - {name: default, use: glm, fallbacks: [flash, qwen]}
shifts:
  - {name: eu-errors, region: eu, when: {error_rate: 0.3, window: 30s, min_samples: 4}, to: [flash], hold: 60s}
state: {backend: sqlite, path: %s}
"""
IMAGE = [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


@pytest.fixture(scope="module")
def proxy(simulator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("capabilities")
    policy = workdir / "policy.yaml"
    policy.write_text(POLICY % (workdir / "state.db"))
    started = start_proxy(simulator, policy, workdir, config=auth_config(workdir, KEYS))
    started.policy = policy
    yield started
    started.stop()


def client(proxy, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)


def chat(proxy, content, key: str = MASTER_KEY, model: str = "auto", **extra):
    return client(proxy, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], **extra
    )


def test_an_image_goes_to_the_vision_model(proxy, simulator):
    before = simulator.count(GPT4O)
    raw = chat(proxy, IMAGE)
    assert raw.headers["x-router-route"] == "vision" and raw.headers["x-router-model"] == GPT4O
    assert simulator.count(GPT4O) == before + 1
    with pytest.raises(openai.BadRequestError) as refused:
        chat(proxy, IMAGE, model="flash")
    assert "images (vision)" in str(refused.value) and "models that can: seer" in str(refused.value)


def test_a_tools_request_skips_a_fallback_without_tools(proxy, simulator):
    simulator.set_profile(PRO, error_rate=1.0)  # the first choice fails
    try:
        flash_before, qwen_before = simulator.count(FLASH), simulator.count(QWEN)
        raw = chat(proxy, "look up the weather", tools=TOOLS)
        assert raw.headers["x-router-route"] == "agents"
        assert raw.headers["x-router-model"] == QWEN and raw.headers["x-router-fell-back-from"] == PRO
        assert simulator.count(FLASH) == flash_before  # flash has no tools: never tried
        assert simulator.count(QWEN) == qwen_before + 1
    finally:
        simulator.set_profile(PRO, error_rate=0.0)


def test_a_free_tier_key_cannot_reach_the_premium_model(proxy, simulator):
    before = simulator.count(GPT4O)
    for name in ("premium", "seer", GPT4O):
        with pytest.raises(openai.PermissionDeniedError) as refused:
            chat(proxy, "hello", key="sk-free", model=name)
        assert "free-tier" in str(refused.value)
    with pytest.raises(openai.PermissionDeniedError):
        chat(proxy, IMAGE, key="sk-free")  # only the premium model sees images
    assert simulator.count(GPT4O) == before
    assert chat(proxy, "hello", key="sk-free").headers["x-router-model"] == GLM


def test_a_team_pinned_to_a_region_stays_there_during_a_shift(proxy, simulator):
    us = (FLASH, PRO, GPT4O)
    assert chat(proxy, "hello", key="sk-eu").headers["x-router-model"] == GLM
    simulator.set_profile(GLM, error_rate=1.0)
    try:
        us_before = {m: simulator.count(m) for m in us}
        for i in range(6):  # glm fails: the eu team falls back to qwen, never to flash
            assert chat(proxy, f"hello {i}", key="sk-eu").headers["x-router-model"] == QWEN

        def shifted() -> bool:
            raw = httpx.post(
                f"{proxy.url}/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {MASTER_KEY}"},
                timeout=30,
            )
            return raw.headers.get("x-router-shifted-from") == GLM

        poll_until(shifted, 10, "the eu-errors shift")
        assert simulator.count(FLASH) > us_before[FLASH]  # everyone else's traffic moves to flash, in us
        us_before = {m: simulator.count(m) for m in us}
        for i in range(4):  # the shift's target is in us: the eu team stays on its own chain
            raw = chat(proxy, f"after {i}", key="sk-eu")
            assert raw.headers["x-router-model"] == QWEN and "x-router-shifted-from" not in raw.headers
        assert {m: simulator.count(m) for m in us} == us_before

        def status() -> dict | None:  # the figures reach the store on the proxy's next sync tick
            out = io.StringIO()
            assert main(["status", "--policy", str(proxy.policy), "--json", "--window", "2m"], stdout=out) == 0
            shown = json.loads(out.getvalue())
            return shown if shown["regions"]["eu"]["errors"] >= 10 else None

        view = poll_until(status, 10, "glm's failures in the eu figures")
        eu = view["regions"]["eu"]
        assert eu["requests"] > eu["errors"]  # glm's failures and qwen's answers together
        assert view["regions"]["us"]["requests"] > 0  # flash's: the shifted traffic of everyone else
        [rule] = view["shifts"]
        assert (rule["watch"], rule["phase"]) == ("region-eu", "shifted")
    finally:
        simulator.set_profile(GLM, error_rate=0.0)


REGIONAL_POLICY = """
version: 1
settings: {retries: 0, timeout: 10s}
models:
  flash: {target: deepseek-v4-flash, context: 128k, region: us}
  glm: {target: glm-4-plus, context: 128k, region: [eu, us]}
  qwen: {target: qwen3-32b, context: 32k, region: eu}
access:
  - {name: eu-residency, who: {teams: [eu-legal]}, regions: [eu]}
routes:
  - {name: default, use: glm, fallbacks: [qwen, flash]}
state: {backend: sqlite, path: %s}
"""
REGION_OF = {"deepseek-v4-flash": "us", "qwen3-32b": "eu"}


def regional_config(workdir):
    """The auth config with a glm group of two deployments, one in each region (the simulator tells
    them apart by the model name), every regional deployment's region_name, and LiteLLM's region check."""
    import yaml

    config = yaml.safe_load(auth_config(workdir, KEYS).read_text())
    entries = []
    for entry in config["model_list"]:
        name = entry["model_name"]
        if name == "glm-4-plus":
            for region in ("eu", "us"):
                params = {**entry["litellm_params"], "model": f"openai/glm-4-plus-{region}", "region_name": region}
                entries.append({**entry, "litellm_params": params})
        elif name in REGION_OF:
            entries.append({**entry, "litellm_params": {**entry["litellm_params"], "region_name": REGION_OF[name]}})
    config["model_list"] = entries
    config["router_settings"] = {"enable_pre_call_checks": True}
    path = workdir / "config-regional.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_model_group_in_two_regions_serves_a_pinned_team_from_its_own(simulator, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(REGIONAL_POLICY % (tmp_path / "state.db"))
    proxy = start_proxy(simulator, policy, tmp_path, config=regional_config(tmp_path))
    try:
        before = {r: simulator.count(f"glm-4-plus-{r}") for r in ("eu", "us")}
        for i in range(8):
            raw = chat(proxy, f"hello {i}", key="sk-eu")
            assert raw.headers["x-router-model"] == GLM
        assert simulator.count("glm-4-plus-eu") == before["eu"] + 8 and simulator.count("glm-4-plus-us") == before["us"]
        for i in range(12):  # anyone else may be served by either
            chat(proxy, f"hi {i}")
        assert simulator.count("glm-4-plus-us") > before["us"]

        def status() -> dict | None:
            out = io.StringIO()
            assert main(["status", "--policy", str(policy), "--json", "--window", "2m"], stdout=out) == 0
            shown = json.loads(out.getvalue())
            return shown if shown["regions"]["eu"]["requests"] + shown["regions"]["us"]["requests"] >= 20 else None

        view = poll_until(status, 10, "per-region figures of the glm group")
        eu, us = view["regions"]["eu"]["requests"], view["regions"]["us"]["requests"]
        assert eu + us == 20 and eu >= 8 and us >= 1  # each answer counted once, by its deployment's region
    finally:
        proxy.stop()
