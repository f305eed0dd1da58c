"""Every attempt of a request (each retry, each fallback) is counted against the model group that
made it, with its own latency and outcome: through a real proxy whose chain fails model by model."""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from router.ops.cli import main
from tests.helpers import MASTER_KEY, poll_until, start_proxy

pytestmark = pytest.mark.e2e
REASONER, PRO, FLASH = "deepseek-reasoner", "deepseek-v4-pro", "deepseek-v4-flash"  # as the simulator sees them
POLICY = """
version: 1
settings: {retries: 1, timeout: 10s, unavailable: {message: "busy", retry_after: 3s}}
models:
  flash: {target: deepseek-v4-flash, context: 128k}
  pro: {target: deepseek-v4-pro, context: 200k}
  reasoner: {target: deepseek-r1, context: 128k}
routes:
  - {name: default, use: reasoner, fallbacks: [pro, flash]}
shifts:
  - {name: flash-slow, watch: flash, when: {p95_latency: 0.5s, window: 2m, min_samples: 10}, to: pro, hold: 2m}
state: {backend: sqlite, path: %s}
"""


@pytest.fixture
def proxy(simulator, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % (tmp_path / "state.db"))
    started = start_proxy(simulator, policy, tmp_path)
    started.policy = policy
    yield started
    started.stop()


def ask_many(proxy, count: int) -> list[httpx.Response]:
    def one(i: int) -> httpx.Response:
        body = {"model": "auto", "messages": [{"role": "user", "content": f"question {i}"}]}
        return httpx.post(
            f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60
        )

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def status(proxy, attempts: dict[str, int]) -> dict:
    """`router status` once the shared figures count `attempts` (model group -> attempts) at least:
    the last events arrive after the answers, and reach the store on the next sync tick."""

    def view() -> dict | None:
        out = io.StringIO()
        assert main(["status", "--policy", str(proxy.policy), "--json", "--window", "2m"], stdout=out) == 0
        shown = json.loads(out.getvalue())
        seen = {group: shown["models"].get(group, {}).get("requests", 0) for group in attempts}
        return shown if all(seen[group] >= count for group, count in attempts.items()) else None

    return poll_until(view, 15, f"the attempts {attempts} in the shared figures")


def test_a_fallback_that_answers_fast_is_not_charged_for_the_failed_attempts_before_it(proxy, sim):
    for model in (REASONER, PRO):
        sim.set_profile(model, error_rate=1.0, latency_ms=150)
    sim.set_profile(FLASH, latency_ms=30)
    answers = ask_many(proxy, 12)
    assert [r.status_code for r in answers] == [200] * 12
    assert {r.headers["x-router-model"] for r in answers} == {"deepseek-v4-flash"}
    view = status(proxy, {"deepseek-v4-flash": 12, "deepseek-r1": 24, "deepseek-v4-pro": 24})
    flash = view["models"]["deepseek-v4-flash"]
    assert flash["requests"] == 12 and flash["errors"] == 0
    assert flash["p95_latency"] < 0.5, flash  # its own answers, not the whole chain's time
    assert [s["phase"] for s in view["shifts"]] == ["normal"]
    # Every attempt counts, retries included, each against its own group.
    for group, seen_as in (("deepseek-r1", REASONER), ("deepseek-v4-pro", PRO)):
        figures = view["models"][group]
        assert figures["requests"] == figures["errors"] == sim.count(seen_as) == 24, (group, figures)


def test_when_every_model_fails_each_attempt_is_an_error_of_its_own_group(proxy, sim):
    for model in (REASONER, PRO, FLASH):
        sim.set_profile(model, error_rate=1.0, latency_ms=150)
    answers = ask_many(proxy, 10)
    assert [r.status_code for r in answers] == [503] * 10
    view = status(proxy, dict.fromkeys(("deepseek-r1", "deepseek-v4-pro", "deepseek-v4-flash"), 20))
    for group, seen_as in (("deepseek-r1", REASONER), ("deepseek-v4-pro", PRO), ("deepseek-v4-flash", FLASH)):
        figures = view["models"][group]
        assert figures["requests"] == figures["errors"] == sim.count(seen_as) == 20, (group, figures)
        assert figures["p95_latency"] is None  # a 500 says nothing about how fast the model answers
    time.sleep(3)  # long enough for attempts left "in flight" to look slow, had their ends been lost
    assert [s["phase"] for s in status(proxy, {})["shifts"]] == ["normal"]
    # One log line per failed request, naming it and every attempt; no traceback.
    log = proxy.log.read_text()
    lines = [line for line in log.splitlines() if "every model failed" in line]
    assert len(lines) == 10
    for answer in answers:
        (line,) = [line for line in lines if f"request {answer.headers['x-litellm-call-id']}, route default" in line]
        assert line.endswith(
            "answering 503: deepseek-r1 InternalServerError 500 x2; deepseek-v4-pro InternalServerError "
            "500 x2; deepseek-v4-flash InternalServerError 500 x2"
        )
    assert "Traceback" not in log and "Error occurred while trying to do fallbacks" not in log
