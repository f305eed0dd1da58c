"""Starting the simulator and LiteLLM proxy processes on free loopback ports: shared by the test
fixtures (tests/conftest.py) and the benchmark scripts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
from upstreams import PROVIDER_VARS

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout}s\n{tail(log)}")


def tail(log: Path | None, size: int = 3000) -> str:
    return log.read_text(errors="replace")[-size:] if log and log.exists() else ""


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start_simulator(log: Path, profiles: Path | None = None) -> tuple[subprocess.Popen, str]:
    """The simulator as a process; returns it and its base URL (no /v1)."""
    port = free_port()
    args = [sys.executable, str(ROOT / "scripts" / "simulator.py"), "--port", str(port)]
    if profiles:
        args += ["--profiles", str(profiles)]
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "simulator", log)
    except TimeoutError:
        stop(proc)
        raise
    return proc, url


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without provider settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.update(extra)
    return env


def start_proxy(config: Path, env: Mapping[str, str], log: Path, workers: int = 1) -> tuple[subprocess.Popen, str]:
    """`litellm --config CONFIG` with `workers` workers; returns the process and its base URL once it is live."""
    port = free_port()
    litellm_bin = Path(sys.executable).parent / "litellm"
    args = [str(litellm_bin), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    args += ["--num_workers", str(workers)]
    with open(log, "w") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the proxy exited with {proc.returncode}:\n{tail(log)}")
        return httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200

    try:
        wait_until(ready, 90, "proxy", log)
    except BaseException:
        stop(proc)
        raise
    return proc, url


class RedisServer:
    """A real redis-server on a free port, without persistence; stop() and start() simulate an outage."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
        ]
        log = self.workdir / f"redis-{self.port}.log"
        with open(log, "a") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_until(lambda: self._ping(client), 15, "redis-server", log)

    @staticmethod
    def _ping(client) -> bool:
        import redis

        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL: gone at once, with nothing saved (a crash); start() brings it back empty."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


class PrometheusServer:
    """A real Prometheus server (Debian's package) on a free port, scraping `targets` (host:port)
    at `path` every `interval`, with its data in `workdir`; `query` asks its HTTP API."""

    def __init__(self, workdir: Path, targets: list[str], path: str, interval: str = "1s", rules: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [{"job_name": "router", "metrics_path": path, "static_configs": [{"targets": targets}]}],
        }
        if rules is not None:
            config["rule_files"] = [str(rules)]
        self.config = workdir / "prometheus.yml"
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        args = [
            "prometheus",
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        log = self.workdir / f"prometheus-{self.port}.log"
        with open(log, "a") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{tail(log)}")
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 30, "prometheus", log)

    def query(self, expression: str) -> list[dict]:
        """The instant vector of a PromQL expression: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def query_range(self, expression: str, start: float, end: float, step: str = "1s") -> list[dict]:
        params = {"query": expression, "start": start, "end": end, "step": step}
        answer = httpx.get(f"{self.url}/api/v1/query_range", params=params, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
