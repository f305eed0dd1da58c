"""Traffic from before the router: a plain LiteLLM proxy (no router callback) whose custom logger
writes each request's standard logging payload as a JSON line, as a team's own logging would;
replayed through the default policy, each request is routed by meaning, with the sender, usage and
latency LiteLLM recorded."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from openai import OpenAI

from router.ops.recorded import read_traffic
from router.ops.replay import Replay
from tests.helpers import DEFAULT, MASTER_KEY, ROOT, poll_until, procs, simulator_env

pytestmark = pytest.mark.e2e
LOGGER = """
import json, os
from litellm.integrations.custom_logger import CustomLogger

class PayloadLogger(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        with open(os.environ["PAYLOAD_LOG"], "a") as out:
            out.write(json.dumps(kwargs["standard_logging_object"], default=str) + "\\n")

logger = PayloadLogger()
"""
PROMPTS = {
    "Show that the square root of 2 is irrational": "reasoning",
    "Write a short poem about the sea at night": "creative",
    "What is the capital of France?": "default",
}


@pytest.fixture(scope="module")
def logged(simulator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("litellm-logs")
    (workdir / "payload_logger.py").write_text(LOGGER)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config.pop("callback_settings")
    config["litellm_settings"]["callbacks"] = "payload_logger.logger"  # beside the config: LiteLLM finds it
    (workdir / "plain.yaml").write_text(yaml.safe_dump(config))
    log = workdir / "payloads.jsonl"
    env = procs.clean_env(LITELLM_MASTER_KEY=MASTER_KEY, PAYLOAD_LOG=str(log), **simulator_env(f"{simulator.url}/v1"))
    proc, url = procs.start_proxy(workdir / "plain.yaml", env, workdir / "proxy.log")
    try:
        client = OpenAI(base_url=f"{url}/v1", api_key=MASTER_KEY, max_retries=0)
        for prompt in PROMPTS:
            client.chat.completions.create(
                model="deepseek-v4-flash", messages=[{"role": "user", "content": prompt}], temperature=0.3
            )
        poll_until(lambda: log.exists() and len(log.read_text().splitlines()) == len(PROMPTS), 15, "three payloads")
    finally:
        procs.stop(proc)
    return log


def test_litellm_payloads_are_replayed_as_the_policy_would_route_them(logged):
    payloads = [json.loads(line) for line in logged.read_text().splitlines()]
    traffic = read_traffic([logged], "auto")
    assert traffic.problems == [] and len(traffic.items) == len(PROMPTS)
    for item, payload in zip(traffic.items, payloads):
        assert item.source == "litellm" and item.target == "deepseek-v4-flash"
        assert item.body["temperature"] == 0.3 and item.body["model"] == "auto"
        assert item.identity.key_hash == hashlib.sha256(MASTER_KEY.encode()).hexdigest()
        assert item.usage["prompt_tokens"] == payload["prompt_tokens"] > 0
        assert item.usage["completion_tokens"] == payload["completion_tokens"] > 0
        assert 0 < item.latency < 10
    outcomes = Replay(str(DEFAULT)).run(traffic)
    assert {o.item.body["messages"][0]["content"]: o.route for o in outcomes} == PROMPTS
    kept = Replay(str(DEFAULT)).run(read_traffic([logged], None))  # --as-recorded: the group they named
    assert {(o.route, o.target) for o in kept} == {("explicit", "deepseek-v4-flash")}
    assert [o.cost_usd for o in kept] == [
        pytest.approx((p["prompt_tokens"] * 0.27 + p["completion_tokens"] * 1.10) / 1e6) for p in payloads
    ]
