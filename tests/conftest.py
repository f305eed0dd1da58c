"""Shared fixtures: real processes (simulator, LiteLLM proxy) on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_VARS = [f"{p}_API_{k}" for p in ("DEEPSEEK", "DASHSCOPE", "ZHIPUAI", "OPENAI") for k in ("KEY", "BASE")]
MASTER_KEY = "sk-test-master"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout}s\n{tail}")


class Simulator:
    """The simulator process and its admin API."""

    def __init__(self, port: int, proc: subprocess.Popen):
        self.url = f"http://127.0.0.1:{port}"
        self.proc = proc
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def stats(self) -> dict[str, dict[str, int]]:
        return self.http.get("/admin/stats").json()["models"]

    def count(self, model: str, what: str = "requests") -> int:
        return self.stats().get(model, {}).get(what, 0)

    def reset(self, profiles: bool = True) -> None:
        self.http.post("/admin/reset", json={"profiles": profiles}).raise_for_status()

    def set_profile(self, model: str, **fields) -> None:
        self.http.put(f"/admin/profiles/{model}", json=fields).raise_for_status()

    def requests_for(self, model: str) -> list[dict]:
        return self.http.get("/admin/requests", params={"model": model}).json()["requests"]


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "simulator.py"), "--port", str(port)], stdout=out, stderr=out)
    sim = Simulator(port, proc)
    try:
        wait_until(lambda: sim.http.get("/health").status_code == 200, 30, "simulator", log)
        yield sim
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def sim(simulator):
    """The shared simulator, with counters and profiles reset for this test."""
    simulator.reset()
    return simulator


def proxy_env(simulator: Simulator, policy: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env.update(
        LITELLM_MASTER_KEY=MASTER_KEY,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        ROUTER_POLICY=str(policy),
        ROUTER_SIMULATOR_URL=f"{simulator.url}/v1",
        ROUTER_RELOAD_INTERVAL="0.2",
        **extra,
    )
    return env


class Proxy:
    def __init__(self, port: int, proc: subprocess.Popen, log: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.proc, self.log = proc, log

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_proxy(simulator: Simulator, policy: Path, workdir: Path, config: Path = ROOT / "config.yaml") -> Proxy:
    """`litellm --config config.yaml` as a real process, routed by `policy`, upstream the simulator."""
    port = free_port()
    log = workdir / f"proxy-{port}.log"
    litellm_bin = Path(sys.executable).parent / "litellm"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(litellm_bin), "--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
            cwd=ROOT, env=proxy_env(simulator, policy), stdout=out, stderr=subprocess.STDOUT,
        )
    proxy = Proxy(port, proc, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        return httpx.get(f"{proxy.url}/health/liveliness", timeout=2).status_code == 200

    try:
        wait_until(ready, 90, "proxy", log)
    except TimeoutError:
        proxy.stop()
        raise
    return proxy
