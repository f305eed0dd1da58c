"""A tenant's key used as an attacker would, against a real proxy with the key-file auth, two
teams and reject/downgrade budgets: what must hold (identity, cache isolation, the upstream the
policy chose) and what used to fail (issue 10: a hang, endpoints and model names that escaped the
budgets, client fallbacks, 500s, oversized requests)."""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx
import pytest

from tests.helpers import MASTER_KEY, auth_config, ledger, ledger_records, poll_until, start_proxy, write_policy

pytestmark = pytest.mark.e2e
A, B = "sk-tenant-a", "sk-tenant-b"
GPT4O, FLASH, R1 = "gpt-4o", "deepseek-v4-flash", "deepseek-reasoner"
KEY_LIMIT = 0.0006
# gpt4o spend per key is tight (two short answers); reasoner spend per team is exhausted at once,
# so every reasoner request of a team is downgraded to flash.
BUDGETS = f"""
  - {{name: key-gpt4o, per: key, window: day, limit_usd: {KEY_LIMIT}, on_exceed: reject, models: [gpt4o]}}
  - {{name: team-reasoner, per: team, window: day, limit_usd: 0.000001, on_exceed: downgrade, to: [flash],
     models: [reasoner]}}
"""
# Endpoints that spend money without passing the policy: LiteLLM's own handlers.
UNGOVERNED = [
    ("/v1/completions", {"model": GPT4O, "prompt": "Say hi"}),
    ("/completions", {"model": GPT4O, "prompt": "Say hi"}),
    ("/engines/gpt-4o/completions", {"prompt": "Say hi"}),
    ("/v1/embeddings", {"model": GPT4O, "input": "Say hi"}),
    ("/v1/responses", {"model": GPT4O, "input": "Say hi"}),
    ("/v1/messages", {"model": GPT4O, "max_tokens": 16, "messages": [{"role": "user", "content": "Say hi"}]}),
    ("/openai/chat/completions", {"model": "o1-pro", "messages": [{"role": "user", "content": "Say hi"}]}),
    ("/cursor/chat/completions", {"model": GPT4O, "messages": [{"role": "user", "content": "Say hi"}]}),
    ("/v1/images/generations", {"model": GPT4O, "prompt": "a cat"}),
    ("/v1/audio/speech", {"model": GPT4O, "input": "hi", "voice": "alloy"}),
    ("/v1/moderations", {"model": GPT4O, "input": "hi"}),
    ("/v1/rerank", {"model": GPT4O, "query": "hi", "documents": ["a", "b"]}),
]
GOVERNED = [
    "/v1/chat/completions",
    "/chat/completions",
    "/openai/deployments/auto/chat/completions",
    "/engines/auto/chat/completions",
]


@pytest.fixture(scope="module")
def proxy(simulator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("security-proxy")
    policy = write_policy(workdir, budgets=BUDGETS)
    started = start_proxy(simulator, policy, workdir, config=auth_config(workdir))
    started.policy = policy
    yield started
    started.stop()


def call(
    proxy, path: str, body: object, key: str = A, method: str = "POST", timeout: float = 30, **kw
) -> httpx.Response:
    return httpx.request(
        method,
        f"{proxy.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {key}", **kw.pop("headers", {})},
        timeout=timeout,
        **kw,
    )


def chat(proxy, content: str, key: str = A, model: str = "auto", **extra) -> httpx.Response:
    return call(
        proxy,
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": content}], **extra},
        key,
    )


def upstream_calls(sim) -> int:
    return sum(m.get("requests", 0) for m in sim.stats().values())


def exhaust_gpt4o(proxy, key: str = A) -> None:
    """Spend `key`'s gpt4o budget until chat on gpt4o is refused."""
    for i in range(20):
        seen = len(ledger(proxy.policy))
        if chat(proxy, f"spend {i}", key, model="gpt4o", max_tokens=24).status_code == 429:
            return
        ledger_records(proxy.policy, seen + 1)  # spend settles after the answer
    pytest.fail("the gpt4o budget never refused")


def assert_clean_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    assert fragment in response.text and "Traceback" not in response.text


# -- 2: every endpoint that spends money is governed or refused ------------------------------------


@pytest.mark.parametrize("path,body", UNGOVERNED, ids=[p for p, _ in UNGOVERNED])
def test_tenant_keys_cannot_spend_through_endpoints_the_policy_does_not_govern(proxy, sim, path, body):
    response = call(proxy, path, body)
    assert_clean_error(response, 403, "governed")
    assert upstream_calls(sim) == 0


@pytest.mark.parametrize("path", GOVERNED)
def test_every_chat_endpoint_is_routed_and_budgeted(proxy, sim, path):
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 24,
    }
    answer = call(proxy, path, body, key=B)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-router-route"] == "default" and answer.headers["x-router-model"] == FLASH
    assert sim.count(FLASH) == 1


def test_an_over_budget_key_is_refused_on_every_chat_endpoint(proxy, sim):
    exhaust_gpt4o(proxy)
    sim.reset()
    for path in GOVERNED:
        body = {
            "model": "auto",
            "messages": [{"role": "user", "content": "Write a short poem about snow"}],
            "max_tokens": 24,
        }
        assert_clean_error(call(proxy, path, body), 429, "key-gpt4o")
    assert sim.count(GPT4O) == 0


def test_admin_and_info_routes_are_closed_to_tenant_keys(proxy):
    for method, path in [
        ("GET", "/key/info"),
        ("GET", "/user/info"),
        ("GET", "/cache/ping"),
        ("POST", "/cache/flushall"),
        ("GET", "/model/info"),
        ("POST", "/key/generate"),
        ("GET", "/global/spend/logs"),
    ]:
        assert_clean_error(call(proxy, path, None, method=method), 403, "tenant")
    models = call(proxy, "/v1/models", None, method="GET")
    assert models.status_code == 200 and GPT4O in {m["id"] for m in models.json()["data"]}


def test_database_routes_answer_404_to_the_master_key_without_a_database(proxy):
    for path in ("/key/info", "/user/info"):
        assert_clean_error(call(proxy, path, None, key=MASTER_KEY, method="GET"), 404, "database")


# -- 3: a model group is its policy model ----------------------------------------------------------


def test_naming_a_group_reserves_like_its_policy_model(proxy, sim):
    key = B
    ok = 0

    async def burst():
        async with httpx.AsyncClient(timeout=30) as client:
            body = {"model": GPT4O, "max_tokens": 24, "messages": [{"role": "user", "content": "burst " * 10}]}
            return await asyncio.gather(
                *(
                    client.post(
                        f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
                    )
                    for _ in range(8)
                )
            )

    digest = hashlib.sha256(key.encode()).hexdigest()

    def theirs(record: dict) -> bool:
        return record.get("key") == digest and record["model"] == "gpt4o" and record["outcome"] == "ok"

    before = sum(theirs(r) for r in ledger(proxy.policy))
    answers = asyncio.run(burst())
    ok = sum(r.status_code == 200 for r in answers)
    assert {r.status_code for r in answers} <= {200, 429}
    spent = sum(r.get("cost_usd") or 0 for r in ledger_records(proxy.policy, before + ok, theirs))
    one = (14 * 2.5 + 24 * 10) / 1e6  # the simulator's prompt tokens for that prompt, 24 answer tokens
    assert spent <= KEY_LIMIT + one and ok <= round(KEY_LIMIT / one) + 1


def test_a_downgrade_applies_to_a_request_naming_the_group(proxy, sim):
    answer = chat(proxy, "hello", key=B, model="deepseek-r1")
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-router-model"] == FLASH and "downgraded" in answer.headers["x-router-reason"]
    assert sim.count(R1) == 0


# -- 4 and 5: routing fields and model names stay the policy's -------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("fallbacks", [GPT4O]),
        ("context_window_fallbacks", [{"flash": [GPT4O]}]),
        ("content_policy_fallbacks", [GPT4O]),
        ("specific_deployment", True),
        ("silent_model", GPT4O),
        ("passthrough_on_no_deployment", True),
        ("mock_testing_fallbacks", True),
        ("mock_testing_rate_limit_error", True),
        ("custom_llm_provider", "openai"),
        ("model_list", [{"model_name": "x", "litellm_params": {"model": "openai/x"}}]),
    ],
)
def test_client_routing_fields_are_refused(proxy, sim, field, value):
    sim.set_profile(FLASH, error_rate=1.0)
    answer = chat(proxy, "hello", key=B, model="think", **{field: value})  # downgraded to flash, which fails
    assert_clean_error(answer, 400, field)
    assert upstream_calls(sim) == 0


def test_a_client_cannot_plant_an_answer(proxy, sim):
    answer = chat(proxy, "hello there", key=B, temperature=0, mock_response="planted answer")
    assert answer.status_code in (200, 400) and "planted" not in answer.text, answer.text


@pytest.mark.parametrize("model", [f"{GPT4O},deepseek-r1,deepseek-v4-pro", "o1-pro", "openai/gpt-4o", "gpt-4o "])
def test_model_names_outside_the_policy_are_refused(proxy, sim, model):
    answer = chat(proxy, "hello", key=B, model=model)
    assert_clean_error(answer, 400, "model")
    assert upstream_calls(sim) == 0


# -- 6: one tenant's failures do not cool a model down for the others ------------------------------


def test_one_tenants_failed_calls_do_not_cool_a_model_down_for_others(proxy, sim):
    sim.set_profile(GPT4O, context=5)  # every prompt is "too long": the provider answers 400
    for _ in range(3):
        for path, body in UNGOVERNED[3:6]:
            call(proxy, path, body, key=A)  # LiteLLM's own handlers reached the simulator, which answers 404
        assert chat(proxy, "a prompt that is longer than five tokens", model="gpt4o", key=A).status_code in (400, 429)
    sim.set_profile(GPT4O, context=1_000_000)
    answer = chat(proxy, "Write a short poem about wind", key=MASTER_KEY, max_tokens=24)
    assert answer.status_code == 200 and answer.headers["x-router-model"] == GPT4O, answer.text


# -- 7 and 8: bad and oversized bodies get a 4xx before any work -----------------------------------


@pytest.mark.parametrize("field", ["api_base", "base_url", "api_key", "aws_profile_name"])
def test_redirecting_the_upstream_is_refused_with_400(proxy, sim, field):
    answer = chat(proxy, "hello", key=B, **{field: "http://attacker.example/v1"})
    assert_clean_error(answer, 400, field)
    assert upstream_calls(sim) == 0


def nested(depth: int) -> str:
    """A JSON list nested `depth` deep, written out (json.dumps itself recurses too deep for it)."""
    return "[" * depth + "]" * depth


def raw_chat(proxy, body: str, key: str = B) -> httpx.Response:
    return httpx.post(
        f"{proxy.url}/v1/chat/completions",
        content=body.encode(),
        timeout=30,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


def test_deeply_nested_values_are_refused_with_400(proxy, sim):
    part = '{"type": "text", "text": "hello", "extra": %s}' % nested(1000)
    answer = raw_chat(
        proxy, '{"model": "auto", "temperature": 0, "messages": [{"role": "user", "content": [%s]}]}' % part
    )
    assert_clean_error(answer, 400, "max_depth")
    metadata = raw_chat(
        proxy, '{"model": "auto", "metadata": {"x": %s}, "messages": [{"role": "user", "content": "hi"}]}' % nested(200)
    )
    assert_clean_error(metadata, 400, "max_depth")
    beyond_the_parser = raw_chat(proxy, '{"model": "auto", "messages": %s}' % nested(100_000))
    assert_clean_error(beyond_the_parser, 400, "JSON")
    assert upstream_calls(sim) == 0


def test_too_many_messages_or_parts_are_refused_with_413(proxy, sim):
    many = [{"role": "user", "content": "hi"}] * 10_000
    assert_clean_error(
        call(proxy, "/v1/chat/completions", {"model": "auto", "messages": many}, key=B), 413, "max_messages"
    )
    parts = [{"type": "text", "text": "hi"}] * 10_000
    body = {"model": "auto", "messages": [{"role": "user", "content": parts}]}
    assert_clean_error(call(proxy, "/v1/chat/completions", body, key=B), 413, "max_parts")
    assert upstream_calls(sim) == 0


# -- what held before and must keep holding --------------------------------------------------------

SPOOFS = [
    {"user": "team-b"},
    {
        "metadata": {
            "user_api_key_team_id": "team-b",
            "user_api_key_hash": hashlib.sha256(B.encode()).hexdigest(),
            "user_api_key_user_id": "bob",
            "tags": ["vip"],
        }
    },
    {
        "metadata": {
            "router": {"route": "explicit", "model": "flash", "target": GPT4O, "reservation": None, "settled": True}
        }
    },
    {"litellm_metadata": {"user_api_key_team_id": "team-b", "user_api_key_hash": "forged"}},
]


@pytest.mark.parametrize("spoof", SPOOFS, ids=["user", "metadata", "forged-decision", "litellm_metadata"])
def test_identity_cannot_be_spoofed_past_an_exhausted_budget(proxy, sim, spoof):
    exhaust_gpt4o(proxy)
    sim.reset()
    body = {"model": "gpt4o", "max_tokens": 24, "messages": [{"role": "user", "content": "hi"}], **spoof}
    for headers, params in [({}, {}), ({"x-litellm-team-id": "team-b", "x-user-id": "bob"}, {"team_id": "team-b"})]:
        answer = call(proxy, "/v1/chat/completions", body, headers=headers, params=params)
        assert answer.status_code in (400, 429), answer.text
    assert sim.count(GPT4O) == 0


def test_a_cached_answer_never_crosses_keys(proxy, sim):
    a_hash = hashlib.sha256(A.encode()).hexdigest()
    tricks = [
        {},
        {"user": A},
        {"metadata": {"user_api_key_hash": a_hash, "user_api_key": a_hash}},
        {"litellm_metadata": {"user_api_key_hash": a_hash}},
        {"cache": {"namespace": a_hash}},
        {"metadata": {"router": {"identity": {"key_hash": a_hash}, "route": "default", "target": FLASH}}},
        {"metadata": {"user_api_key_team_id": "team-a"}, "user": "team-a"},
    ]
    for i, trick in enumerate(tricks):
        question = f"What is the capital of the country with the most lakes, number {i}? Answer briefly."
        assert chat(proxy, question, key=A, temperature=0).status_code == 200
        # A's own hit, once LiteLLM's background write has stored the answer
        poll_until(
            lambda: chat(proxy, question, key=A, temperature=0).headers["x-router-cache"] != "miss",  # noqa: B023
            10,
            "A's own cache hit",
        )
        answer = chat(proxy, question, key=B, temperature=0, **trick)
        assert answer.status_code in (200, 400), answer.text
        assert answer.status_code == 400 or answer.headers["x-router-cache"] == "miss", trick


def test_truncated_answers_are_not_cached(proxy, sim):
    sim.set_profile(FLASH, truncate=True)
    question = "Tell me about the history of tea in one paragraph."
    assert chat(proxy, question, key=B, temperature=0).status_code == 200
    time.sleep(0.5)  # time for a background write that must not happen: nothing to poll for
    sim.set_profile(FLASH, truncate=False)
    assert chat(proxy, question, key=B, temperature=0).headers["x-router-cache"] == "miss"


# -- 1: last, as on the old code it hangs the proxy ------------------------------------------------


def test_cache_endpoints_answer_at_once_and_the_proxy_stays_live(proxy, sim):
    filled = "Fill the cache with one answer please"
    poll_until(
        lambda: chat(proxy, filled, key=B, temperature=0).headers["x-router-cache"] != "miss", 10, "a stored answer"
    )
    for method, path in [
        ("GET", "/cache/ping"),
        ("POST", "/cache/delete"),
        ("GET", "/cache/redis/info"),
        ("POST", "/cache/flushall"),
        ("GET", "/health/readiness"),
    ]:
        answer = call(
            proxy, path, {"keys": ["x"]} if method == "POST" else None, key=MASTER_KEY, method=method, timeout=10
        )
        assert answer.status_code < 500 or answer.status_code == 503, (path, answer.status_code, answer.text[:300])
        assert path != "/cache/ping" or answer.status_code == 200, answer.text[:300]
        assert len(answer.content) < 100_000, path
        live = httpx.get(f"{proxy.url}/health/liveliness", timeout=5)
        assert live.status_code == 200
