"""Shared fixtures: real processes (simulator, LiteLLM proxy) on free loopback ports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import procs  # noqa: E402  (scripts/procs.py: the process helpers the benchmarks use too)

MASTER_KEY = "sk-test-master"


class Simulator:
    """The simulator process and its admin API."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

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
    proc, url = procs.start_simulator(tmp_path_factory.mktemp("simulator") / "simulator.log")
    try:
        yield Simulator(url)
    finally:
        procs.stop(proc)


@pytest.fixture
def sim(simulator):
    """The shared simulator, with counters and profiles reset for this test."""
    simulator.reset()
    return simulator


class Proxy:
    def __init__(self, proc, url: str, log: Path):
        self.proc, self.url, self.log = proc, url, log

    def stop(self) -> None:
        procs.stop(self.proc)


def start_proxy(simulator: Simulator, policy: Path, workdir: Path, config: Path = ROOT / "config.yaml") -> Proxy:
    """`litellm --config config.yaml` as a real process, routed by `policy`, upstream the simulator."""
    env = procs.clean_env(
        LITELLM_MASTER_KEY=MASTER_KEY,
        ROUTER_POLICY=str(policy),
        ROUTER_SIMULATOR_URL=f"{simulator.url}/v1",
        ROUTER_RELOAD_INTERVAL="0.2",
    )
    log = workdir / f"proxy-{procs.free_port()}.log"
    proc, url = procs.start_proxy(config, env, log)
    return Proxy(proc, url, log)
