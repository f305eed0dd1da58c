"""Traffic shifts, circuit breaking, retry-after and graceful failure through a real proxy process
whose upstream (the simulator) is made slow, erratic or rate limited while it runs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from conftest import MASTER_KEY, ledger, start_proxy

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
    return httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      timeout=60)


def drive(proxies, seconds: float, content: str = "hello there", workers: int = 4) -> list[tuple[float, httpx.Response]]:
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

    sim.set_profile(FLASH, latency_ms=50)
    recovered = drive([proxy], 12)
    assert all(r.status_code == 200 for _, r in recovered)
    tail = served(recovered)[-10:]
    assert tail == [FLASH] * 10, served(recovered)
    assert not any(r.headers.get("x-router-shifted-from") for _, r in recovered[-10:])
