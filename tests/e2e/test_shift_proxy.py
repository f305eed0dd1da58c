"""Traffic shifts, circuit breaking, retry-after and graceful failure through a real proxy process
whose upstream (the simulator) is made slow, erratic or rate limited while it runs."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers import MASTER_KEY, ledger, ledger_records, poll_until, start_proxy

pytestmark = pytest.mark.e2e
FLASH, PRO, QWEN, GLM = "deepseek-v4-flash", "deepseek-v4-pro", "qwen3-32b", "glm-4-plus"
THRESHOLD = 0.4  # flash's p95 latency limit, seconds
SHIFT_POLICY = """
version: 1
settings:
  retries: 1
  timeout: 10s
  unavailable: {message: "All models are busy right now; try again in a few seconds.", retry_after: 7s}
models:
  flash: {target: deepseek-v4-flash, price: {input: 0.27, output: 1.10}, context: 128k}
  pro: {target: deepseek-v4-pro, price: {input: 0.55, output: 2.20}, context: 200k}
  qwen: {target: qwen3-32b, price: {input: 0.30, output: 1.20}, context: 32k}
  glm: {target: glm-4-plus, price: {input: 0.20, output: 0.80}, context: 128k}
  cold: {target: gpt-4o, price: {input: 2.5, output: 10}, context: 128k, keepalive: 1s}
routes:
  - {name: storm, when: {any: [storm]}, use: glm, fallbacks: [flash]}
  - {name: limited, when: {any: [limited]}, use: qwen, fallbacks: [pro]}
  - {name: essay, when: {any: [essay]}, use: qwen, on_truncation: pro}
  - {name: hurry, when: {any: [hurry]}, use: qwen, fallbacks: [pro], timeout: 0.5s, retries: 0}
  - {name: default, use: flash, fallbacks: [pro]}
shifts:
  - name: flash-slow
    watch: flash
    when: {p95_latency: %(threshold)ss, window: 6s, min_samples: 20}
    to: pro
    hold: 4s
    probe: {percent: 25, min_samples: 4, recover_below: 0.8}
  - {name: glm-errors, watch: glm, when: {error_rate: 0.3, window: 10s, min_samples: 10}, to: flash, hold: 60s}
state: %(state)s
"""


def write_shift_policy(workdir: Path, state: str | None = None) -> Path:
    path = workdir / "shift-policy.yaml"
    state = state or f"{{backend: sqlite, path: {workdir / 'state.db'}}}"
    path.write_text(SHIFT_POLICY % {"threshold": THRESHOLD, "state": state})
    return path


@pytest.fixture(scope="module")
def proxy(simulator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("shift")
    policy = write_shift_policy(workdir)
    started = start_proxy(simulator, policy, workdir)
    started.policy = policy
    # A fresh proxy's first call to each model is slow (clients are built on first use): let those
    # samples age out of the 6 s window before the tests measure anything.
    for content in ("hello", "storm", "limited", "essay"):
        ask(started, content)
    time.sleep(6.5)
    yield started
    started.stop()


def ask(proxy, content: str, **extra) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(
        f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=60
    )


def drive(
    proxies, seconds: float, content: str = "hello there", workers: int = 4
) -> list[tuple[float, httpx.Response]]:
    """Requests from `workers` clients for `seconds`, spread over the proxies: (sent at, response)."""
    deadline = time.time() + seconds

    def client(i: int):
        out = []
        while time.time() < deadline:
            sent = time.time()
            out.append((sent, ask(proxies[i % len(proxies)], f"{content} {i} {len(out)}")))
        return out

    with ThreadPoolExecutor(workers) as pool:
        return sorted((item for part in pool.map(client, range(workers)) for item in part), key=lambda x: x[0])


def served(results) -> list[str]:
    return [r.headers["x-router-model"] for _, r in results]


def test_latency_breach_shifts_traffic_and_it_returns_after_recovery(proxy, sim):
    sim.set_profile(FLASH, latency_ms=50)
    sim.set_profile(PRO, latency_ms=50)
    warm = drive([proxy], 3)
    assert all(r.status_code == 200 for _, r in warm) and set(served(warm)) == {FLASH}

    sim.set_profile(FLASH, latency_ms=900)
    breach = time.time()
    slow_before = sim.count(FLASH)
    degraded = drive([proxy], 8)
    assert all(r.status_code == 200 for _, r in degraded)
    shifted = [(t, r) for t, r in degraded if r.headers.get("x-router-shifted-from") == FLASH]
    assert shifted, "no request was shifted away from the slow model"
    assert {r.headers["x-router-model"] for _, r in shifted} == {PRO}
    first_shift = shifted[0][0] - breach
    assert first_shift < 6 + 2, f"shift began {first_shift:.1f}s after the breach"
    # Once shifted, flash gets at most the probe share until the hold ends (4 s) and probes fail.
    to_flash_after_breach = sim.count(FLASH) - slow_before
    assert to_flash_after_breach < len(degraded) / 2, (to_flash_after_breach, len(degraded))
    assert "shift 'flash-slow'" in shifted[-1][1].headers["x-router-reason"]
    named = ask(proxy, "hello, flash itself please", model="flash")  # slow, but the model asked for
    assert named.status_code == 200 and named.headers["x-router-model"] == FLASH
    assert "x-router-shifted-from" not in named.headers

    sim.set_profile(FLASH, latency_ms=50)
    recovered = drive([proxy], 12)
    assert all(r.status_code == 200 for _, r in recovered)
    tail = served(recovered)[-10:]
    assert tail == [FLASH] * 10, served(recovered)
    assert not any(r.headers.get("x-router-shifted-from") for _, r in recovered[-10:])


def test_a_hanging_model_is_shifted_before_its_answers_arrive(proxy, sim):
    sim.set_profile(PRO, latency_ms=50)
    time.sleep(6.5)  # the previous test's samples leave the 6 s window
    sim.set_profile(FLASH, latency_ms=4000)
    hung = ThreadPoolExecutor(24)
    stuck = [hung.submit(ask, proxy, f"hello, slow one {i}") for i in range(24)]
    time.sleep(2.0)  # time passing: the attempts in flight grow older than the rule's threshold
    started = time.time()
    moved = ask(proxy, "hello from a new client")
    assert moved.headers.get("x-router-shifted-from") == FLASH and moved.headers["x-router-model"] == PRO
    assert time.time() - started < 1.0 and not any(f.done() for f in stuck)  # no slow answer had come back
    assert all(f.result().status_code == 200 for f in stuck)
    hung.shutdown()
    sim.set_profile(FLASH, latency_ms=50)  # recover, for the next test
    recovered = drive([proxy], 12)
    assert served(recovered)[-10:] == [FLASH] * 10


def test_latency_at_the_threshold_does_not_flap(proxy, sim):
    sim.set_profile(PRO, latency_ms=50)
    sim.set_profile(FLASH, latency_ms=THRESHOLD * 1000 * 0.75)  # just under: never shifts
    under = drive([proxy], 5)
    assert set(served(under)) == {FLASH}

    sim.set_profile(FLASH, latency_ms=THRESHOLD * 1000, latency_jitter=0.15)  # half the answers above it
    hovering = drive([proxy], 14)
    assert all(r.status_code == 200 for _, r in hovering)
    first = next(i for i, (_, r) in enumerate(hovering) if r.headers.get("x-router-shifted-from") == FLASH)
    after = served(hovering[first:])
    # Shifted once, it stays shifted: only probes reach flash, and the probes never look healthy
    # enough (under 80 % of the threshold) to bring all traffic back.
    assert after.count(FLASH) / len(after) < 0.4, after
    assert FLASH not in after[-8:] or after[-8:].count(FLASH) < 4, after


def test_error_storm_opens_the_circuit_and_no_request_fails(proxy, sim):
    sim.set_profile(FLASH, latency_ms=50)
    sim.set_profile(GLM, error_rate=0.5)
    results = drive([proxy], 8, content="storm warning")
    assert [r.status_code for _, r in results] == [200] * len(results)
    opened = next(t for t, r in results if r.headers.get("x-router-shifted-from") == GLM)
    later = [r for t, r in results if t > opened + 0.5]
    # The circuit sends glm's traffic to flash; while the previous test's latency shift on flash
    # still holds, flash passes it on to pro. Never back to glm.
    assert later and {r.headers["x-router-model"] for r in later} <= {FLASH, PRO}
    assert all("via 'flash'" in r.headers["x-router-reason"] for r in later if r.headers["x-router-model"] == PRO)
    named = ask(proxy, "storm, from glm itself", model="glm")  # failing outright: a named request moves too
    assert named.status_code == 200 and named.headers["x-router-model"] in {FLASH, PRO}
    assert named.headers["x-router-shifted-from"] == GLM and named.headers["x-router-route"] == "explicit"
    before = sim.count(GLM)
    again = drive([proxy], 2, content="storm again")
    assert all(r.status_code == 200 for _, r in again)
    assert sim.count(GLM) == before, "the open circuit still sent requests to the failing model"


def test_rate_limited_model_is_not_called_before_its_retry_after(proxy, sim):
    sim.set_profile(QWEN, rate_limit_rate=1.0, retry_after=2)
    sim.set_profile(PRO, latency_ms=20)
    deadline = time.time() + 7
    answers = []
    while time.time() < deadline:
        answers.append(ask(proxy, f"limited request {len(answers)}"))
    assert {r.status_code for r in answers} == {200} and {r.headers["x-router-model"] for r in answers} == {PRO}
    arrivals = httpx.get(f"{sim.url}/admin/requests", params={"model": QWEN}).json()["arrivals"]
    assert len(arrivals) >= 2 and len(answers) > 3 * len(arrivals)
    # Only requests routed while no hold was on tried qwen (and fell back to pro at once); the rest
    # went straight to pro, saying why.
    routed_to_qwen = [r for r in answers if r.headers.get("x-router-fell-back-from") == QWEN]
    assert len(routed_to_qwen) == len(arrivals)
    assert sim.count(PRO) == len(answers)
    moved = [r for r in answers if r.headers.get("x-router-shifted-from") == QWEN]
    assert moved and "rate limited by its provider" in moved[0].headers["x-router-reason"]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 2.0, gaps

    while ask(proxy, "limited, once more").headers.get("x-router-fell-back-from") != QWEN:
        pass  # until a fresh 429 starts a new 2 s hold
    named = ask(proxy, "no fallback here", model="qwen")  # held, and a named model has no fallbacks
    assert named.status_code == 429 and 1 <= int(named.headers["retry-after"]) <= 2
    assert "rate limited" in named.json()["error"]["message"]


def test_a_named_group_rate_limited_by_its_provider_gets_our_429_at_once(proxy, sim):
    """No sleeping retries and no 503: each request either gets its answer or a 429 with the
    provider's Retry-After, and while the group is held nothing is sent to it."""
    time.sleep(2.1)  # an earlier test's 2 s hold on qwen ends
    sim.set_profile(QWEN, rate_limit_rate=0.5, retry_after=1)
    answers: list[httpx.Response] = []
    # Over several seconds, so that several 1 s holds begin and end; each hold keeps qwen from the
    # next requests, so until both answers have been seen, ask on (a run of 429s is possible).
    while len(answers) < 40 or ({r.status_code for r in answers} < {200, 429} and len(answers) < 150):
        answers.append(ask(proxy, f"named and limited {len(answers)}", model=QWEN))
        time.sleep(0.1)
    statuses = [r.status_code for r in answers]
    assert set(statuses) == {200, 429}, statuses
    limited = [r for r in answers if r.status_code == 429]
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert all("rate limited" in r.json()["error"]["message"] for r in limited)
    assert all(r.headers["x-router-route"] == "explicit" for r in answers)
    # One upstream call at most per request (no retry after a 429), none while the hold lasts.
    held = sum("held" in r.json()["error"]["message"] for r in limited)
    assert sim.count(QWEN) <= len(answers) - held, (sim.stats(), len(answers), held)
    assert sim.count(QWEN) == statuses.count(200) + sim.count(QWEN, "rate_limited"), (sim.stats(), statuses)


def test_timeouts_fall_back_and_everything_down_gives_the_configured_503(proxy, sim):
    sim.set_profile(QWEN, latency_ms=2000)
    sim.set_profile(PRO, latency_ms=20)
    started = time.time()
    quick = ask(proxy, "hurry up please")
    assert quick.status_code == 200 and quick.headers["x-router-model"] == PRO
    assert time.time() - started < 2.0  # the 0.5 s attempt timeout cut qwen off; no 2 s wait

    for model in (FLASH, PRO):
        sim.set_profile(model, error_rate=1.0)
    sim.set_profile(QWEN, latency_ms=5000)
    for content, extra in (("hello down", {}), ("hello down streamed", {"stream": True}), ("hurry down", {})):
        started = time.time()
        answer = ask(proxy, content, **extra)
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "7"
        assert answer.json()["error"]["message"] == "All models are busy right now; try again in a few seconds."
        assert time.time() - started < 10
    failures = [r for r in ledger(proxy.policy) if r["outcome"] == "error"]
    assert len(failures) >= 3


def test_truncated_answer_is_retried_on_the_larger_model(proxy, sim):
    essays = sum(r["route"] == "essay" for r in ledger(proxy.policy))
    sim.set_profile(QWEN, truncate=True)
    answer = ask(proxy, "write an essay about rivers")
    assert answer.status_code == 200
    assert answer.headers["x-router-model"] == PRO and answer.headers["x-router-truncated-on"] == QWEN
    assert answer.json()["choices"][0]["finish_reason"] == "stop"
    assert "retried on 'pro'" in answer.headers["x-router-reason"]
    assert sim.count(QWEN) == 1 and sim.count(PRO) == 1
    records = ledger_records(proxy.policy, essays + 2, lambda r: r["route"] == "essay")[-2:]
    assert sorted(r["served"] for r in records) == [PRO, QWEN] and all(r["outcome"] == "ok" for r in records)

    sim.set_profile(QWEN, truncate=False)
    capped = ask(proxy, "an essay, but short", max_tokens=5)  # the client's own limit: not retried
    assert capped.status_code == 200 and capped.json()["choices"][0]["finish_reason"] == "length"
    assert capped.headers["x-router-model"] == QWEN and "x-router-truncated-on" not in capped.headers


def test_two_proxies_on_one_redis_apply_a_shift_seen_by_one(simulator, redis_server, tmp_path):
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    policy = write_shift_policy(tmp_path, state=f'{{backend: redis, url: "{redis_server.url}"}}')
    first = start_proxy(simulator, policy, tmp_path)
    try:
        second = start_proxy(simulator, policy, tmp_path)
        try:
            _shift_seen_by_both(simulator, first, second)
        finally:
            second.stop()
    finally:
        first.stop()


def _shift_seen_by_both(sim, first, second):
    sim.reset()
    sim.set_profile(FLASH, latency_ms=900)
    sim.set_profile(PRO, latency_ms=50)
    # Only the first proxy's traffic meets the slow model...
    results = drive([first], 8, workers=6)
    assert any(r.headers.get("x-router-shifted-from") == FLASH for _, r in results)
    # ...and the second, which has sent flash nothing, moves its traffic too.
    before = sim.count(FLASH)
    from_second = [ask(second, f"hello from the second proxy {i}") for i in range(12)]
    assert all(r.status_code == 200 for r in from_second)
    moved = [r for r in from_second if r.headers.get("x-router-shifted-from") == FLASH]
    assert len(moved) >= 4, [r.headers["x-router-model"] for r in from_second]  # a probe phase sends 25 % back
    assert sim.count(FLASH) - before <= len(from_second) - len(moved)


def test_keepalive_pings_an_idle_model(proxy, sim):
    poll_until(lambda: len(sim.requests_for("gpt-4o")) >= 2, 10, "two keep-alive pings")  # one a second
    pings = sim.requests_for("gpt-4o")
    assert 2 <= len(pings) <= 5 and all(p["max_tokens"] == 1 for p in pings)


def test_status_reads_the_running_proxys_figures_including_stream_ttft(proxy, sim):
    import io
    import json

    from router.ops.cli import main

    sim.set_profile(PRO, latency_ms=300, tokens_per_second=200)
    with httpx.stream(
        "POST",
        f"{proxy.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "pro", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as stream:
        assert stream.status_code == 200 and sum(1 for _ in stream.iter_lines()) > 3

    def view() -> dict | None:  # the success event, then the next sync tick
        out = io.StringIO()
        assert main(["status", "--policy", str(proxy.policy), "--json", "--window", "30s"], stdout=out) == 0
        shown = json.loads(out.getvalue())
        return shown if shown["models"].get(PRO, {}).get("ttft_samples") else None

    view = poll_until(view, 10, "the stream's TTFT in the shared figures")
    pro = view["models"][PRO]
    assert pro["ttft_samples"] >= 1 and 0.25 <= pro["ttft_p95"] < 2  # the simulator waits 300 ms before the first token
    assert {s["rule"] for s in view["shifts"]} == {"flash-slow", "glm-errors"}
