"""A real `litellm --config config.yaml` process routed by the policy, the simulator as upstream,
driven by the official openai client and by litellm.completion."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import litellm
import pytest
from openai import OpenAI

from tests.helpers import MASTER_KEY, ROOT, poll_until, procs, simulator_env, start_proxy, write_policy

pytestmark = pytest.mark.e2e
DEBUG = "Please debug this code: def f(x): return 1/x"
PLAIN = "What is the tallest mountain on Earth?"


@pytest.fixture(scope="module")
def policy_copy(tmp_path_factory) -> Path:
    return write_policy(tmp_path_factory.mktemp("policy"))


@pytest.fixture(scope="module")
def proxy(simulator, policy_copy):
    proc = start_proxy(simulator, policy_copy, policy_copy.parent)
    yield proc
    proc.stop()


@pytest.fixture
def client(proxy) -> OpenAI:
    return OpenAI(base_url=f"{proxy.url}/v1", api_key=MASTER_KEY, max_retries=0)


def ask(client: OpenAI, content: str, model: str = "auto", **extra):
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], **extra
    )
    return raw.headers, raw.parse()


def test_debug_request_takes_the_reasoning_route(client, sim):
    headers, completion = ask(client, DEBUG)
    assert headers["x-router-route"] == "reasoning"
    assert headers["x-router-model"] == "deepseek-r1"
    assert "debug this code" in headers["x-router-reason"]
    assert completion.choices[0].message.content.startswith("[deepseek-reasoner#")
    assert sim.stats() == {"deepseek-reasoner": {"requests": 1, "ok": 1}}


def test_plain_question_takes_the_default_route(client, sim):
    headers, _ = ask(client, PLAIN)
    assert (headers["x-router-route"], headers["x-router-model"]) == ("default", "deepseek-v4-flash")
    assert sim.count("deepseek-v4-flash") == 1 and sim.count("deepseek-reasoner") == 0


def test_streaming_is_routed_and_explained(client, sim):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Write a poem about rain"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    assert raw.headers["x-router-route"] == "creative"
    assert text.startswith("[gpt-4o#")
    assert sim.count("gpt-4o", "streams") == 1


def test_a_named_model_group_is_served_as_asked(client, sim):
    headers, _ = ask(client, DEBUG, model="qwen3-32b")
    assert (headers["x-router-route"], headers["x-router-model"]) == ("explicit", "qwen3-32b")
    assert sim.count("qwen3-32b") == 1 and sim.count("deepseek-reasoner") == 0


def test_a_policy_alias_names_its_model(client, sim):
    headers, _ = ask(client, PLAIN, model="fast")
    assert headers["x-router-model"] == "deepseek-v4-flash"
    assert sim.count("deepseek-v4-flash") == 1


def test_a_failing_model_falls_back_along_the_route(client, sim):
    sim.set_profile("deepseek-reasoner", error_rate=1.0)
    _, completion = ask(client, DEBUG)
    assert completion.choices[0].message.content.startswith("[deepseek-v4-pro#")
    assert sim.count("deepseek-reasoner", "errors") >= 1 and sim.count("deepseek-v4-pro", "ok") == 1


def test_litellm_sdk_as_a_client_of_the_proxy(proxy, sim):
    response = litellm.completion(
        model="litellm_proxy/auto",
        api_base=proxy.url,
        api_key=MASTER_KEY,
        messages=[{"role": "user", "content": DEBUG}],
    )
    assert response.choices[0].message.content.startswith("[deepseek-reasoner#")


@pytest.mark.parametrize(
    "body,status,fragment",
    [
        ({"model": "auto"}, 400, "`messages` is required"),
        ({"model": "auto", "messages": "hello"}, 400, "`messages` must be a list"),
        ({"model": "auto", "messages": [{"content": "hi"}]}, 400, "string `role`"),
        ({"model": "auto", "messages": [{"role": "user", "content": "x" * 2_000_000}]}, 413, "max_prompt_chars"),
        ({"model": "auto", "messages": [{"role": "user", "content": "word " * 180_000}]}, 400, "context window"),
        (
            {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "tools": "nope"},
            400,
            "`tools` must be a list",
        ),
        (
            {"model": "qwen3-32b", "messages": [{"role": "wizard", "content": "hi"}]},
            400,
            "messages[0].role must be one of",
        ),
        (
            {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
            400,
            "`temperature`",
        ),
        (
            {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"},
            400,
            "`stream` must be true",
        ),
    ],
    ids=[
        "no-messages",
        "messages-not-a-list",
        "no-role",
        "2MB-prompt",
        "too-long-for-every-model",
        "tools-not-a-list",
        "unknown-role-named-model",
        "temperature-not-a-number",
        "stream-not-a-boolean",
    ],
)
def test_malformed_requests_get_a_4xx_with_a_message(proxy, sim, body, status, fragment):
    response = httpx.post(
        f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=30
    )
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]["message"]
    assert sim.stats() == {}


@pytest.mark.parametrize(
    "path,body",
    [
        ("/v1/chat/completions", b"[1,2,3]"),
        ("/v1/chat/completions", b' "hello"'),
        ("/v1/chat/completions", b"7"),
        ("/v1/embeddings", b"[1]"),
        ("/v1/completions", b"null"),
    ],
    ids=["array", "string", "number", "embeddings-array", "completions-null"],
)
def test_a_body_that_is_not_a_json_object_gets_400(proxy, sim, path, body):
    response = httpx.post(
        f"{proxy.url}{path}",
        content=body,
        timeout=30,
        headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == "the request body must be a JSON object"
    assert sim.stats() == {}


@pytest.mark.parametrize(
    "headers,fragment",
    [({}, "no API key"), ({"Authorization": "Bearer sk-wrong"}, "invalid API key")],
    ids=["missing", "wrong"],
)
def test_a_missing_or_wrong_key_gets_401(proxy, sim, headers, fragment):
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    for path in ("/v1/chat/completions", "/v1/models"):
        response = (
            httpx.post(f"{proxy.url}{path}", json=body, headers=headers, timeout=30)
            if path.endswith("completions")
            else httpx.get(f"{proxy.url}{path}", headers=headers, timeout=30)
        )
        assert response.status_code == 401, (path, response.text)
        assert fragment in response.json()["error"]["message"]
    assert sim.stats() == {}


@pytest.mark.parametrize(
    "old,new,problem",
    [
        (
            "target: deepseek-v4-pro",
            "target: deepseek-v4-pr0",
            "models.pro.target: 'deepseek-v4-pr0' is not a model group of",
        ),
        ("use: reasoner", "use: reasonr", "routes[0].use: unknown model 'reasonr'"),
    ],
    ids=["target-not-in-config", "unknown-model"],
)
def test_a_policy_the_proxy_cannot_serve_stops_it_with_the_problems_last(simulator, tmp_path, old, new, problem):
    policy = write_policy(tmp_path)
    policy.write_text(policy.read_text().replace(old, new))
    env = procs.clean_env(
        LITELLM_MASTER_KEY=MASTER_KEY, ROUTER_POLICY=str(policy), **simulator_env(f"{simulator.url}/v1")
    )
    args = [
        str(Path(sys.executable).parent / "litellm"),
        "--config",
        str(ROOT / "config.yaml"),
        "--port",
        str(procs.free_port()),
        "--num_workers",
        "1",
    ]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0
    assert "Traceback" not in output
    last = done.stderr.strip().splitlines()
    assert last[-3] == f"router: the proxy cannot start: policy {policy} is invalid."
    assert last[-2] == "invalid policy (1 problem):" and problem in last[-1] and f"{policy}:" in last[-1]


def wait_for_route(client: OpenAI, content: str, model: str, timeout: float = 5.0) -> float:
    start = time.monotonic()
    poll_until(lambda: ask(client, content)[0]["x-router-model"] == model, timeout, f"requests moving to {model}")
    return time.monotonic() - start


def test_hot_reload_follows_a_valid_change_and_ignores_an_invalid_one(client, proxy, policy_copy, sim):
    original = policy_copy.read_text()
    try:
        policy_copy.write_text(original.replace("use: reasoner", "use: gpt4o"))
        assert wait_for_route(client, DEBUG, "gpt-4o") < 2.0
        policy_copy.write_text(original.replace("use: reasoner", "use: no-such-model"))
        poll_until(lambda: "unknown model 'no-such-model'" in proxy.log.read_text(), 10, "the broken edit refused")
        for _ in range(3):
            assert ask(client, DEBUG)[0]["x-router-model"] == "gpt-4o"
        log = proxy.log.read_text()
        assert "was not reloaded; the last good policy keeps serving" in log
        assert "routes[0].use: unknown model 'no-such-model'" in log
        policy_copy.write_text(
            original.replace("use: reasoner", "use: gpt4o").replace("target: gpt-4o", "target: gpt-40")
        )
        poll_until(lambda: "'gpt-40' is not a model group" in proxy.log.read_text(), 10, "the unknown target refused")
        assert ask(client, DEBUG)[0]["x-router-model"] == "gpt-4o"  # a target the proxy does not serve: not taken
        assert "models.gpt4o.target: 'gpt-40' is not a model group of" in proxy.log.read_text()
    finally:
        policy_copy.write_text(original)
    wait_for_route(client, DEBUG, "deepseek-r1")
