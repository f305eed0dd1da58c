"""What the tests share besides fixtures: the simulator's admin client, a proxy started from a
policy, policies and configs written for a test, the ledger, polling instead of sleeping, and ASCII text of
every kind."""

from __future__ import annotations

import os
import random
import re
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import procs  # scripts/procs.py (on the path: tests/__init__.py): the process helpers the benchmarks use too
from upstreams import PROVIDER_VARS, simulator_env

import router
from router.adapter.sdk import PolicyProvider

ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = "sk-test-master"
T = TypeVar("T")


@contextmanager
def sdk_installed(
    simulator_url: str, policy: Path, identity: router.Identity | None = None
) -> Iterator[PolicyProvider]:
    """`router.install` of a policy with config.yaml's model list on the simulator (its
    os.environ/ values pointed there, provider keys set aside until the end), calls made as `identity`."""
    saved = {k: os.environ.pop(k) for k in PROVIDER_VARS if k in os.environ}
    os.environ.update(simulator_env(f"{simulator_url}/v1"))
    try:
        yield router.install(policy, config=ROOT / "config.yaml", watch=False, identity=identity)
    finally:
        for key in PROVIDER_VARS:
            os.environ.pop(key, None)
        os.environ.update(saved)


def poll_until(check: Callable[[], T], timeout: float = 10.0, what: str = "the condition", every: float = 0.05) -> T:
    """Call `check` until it returns something truthy, and return that; fail after `timeout`
    seconds naming `what` (and the last error `check` raised, if any)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:  # a check may assert, to say what it still misses
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g}s" + (f": {last}" if last else ""))
        time.sleep(every)


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


class Proxy:
    def __init__(self, proc, url: str, log: Path):
        self.proc, self.url, self.log = proc, url, log

    def stop(self) -> None:
        procs.stop(self.proc)


TENANT_KEYS = {"sk-tenant-a": "team-a", "sk-tenant-b": "team-b"}


# The reasoner's reasoning tokens cost more than its answer tokens here, so tests can tell them apart.
REASONER_PRICE = {"input": 0.15, "output": 0.60, "reasoning": 2.00}


KEYWORDS = ROOT / "policies" / "examples" / "keywords-only.yaml"
DEFAULT = ROOT / "policies" / "default.yaml"


def write_policy(workdir: Path, state: str | None = None, budgets: str | None = None, source: Path = KEYWORDS) -> Path:
    """A copy of `source` (by default the keyword-only policy: the default's models, budgets and
    shifts, with routes a test can steer by a word) whose state lives in `workdir` (or as `state`
    says), with the reasoner priced by REASONER_PRICE and, when given, `budgets` (a YAML list) for
    its budgets. A classifier the source names is named by its absolute path."""
    text = source.read_text()
    text = re.sub(r"classifier: \{path: ([^}]+)\}", lambda m: f"classifier: {{path: {source.parent / m[1]}}}", text)
    if budgets is not None:
        start = text.index("\nbudgets:")
        end = text.index("\n\n", start)
        text = text[:start] + "\nbudgets:\n" + budgets.strip("\n") + text[end:]
    state_line = next(line for line in text.splitlines() if line.startswith("state:"))
    text = text.replace(state_line, f"state: {state or {'backend': 'sqlite', 'path': str(workdir / 'state.db')}}")
    text = text.replace("price: {input: 0.15, output: 0.60, reasoning: 0.60}", f"price: {REASONER_PRICE}")
    path = workdir / "policy.yaml"
    path.write_text(text)
    return path


def expected_cost(price: dict, prompt: int, answer: int, reasoning: int) -> float:
    """A cost computed by hand from token counts, independent of router.core.pricing."""
    return (
        prompt * price["input"] + answer * price["output"] + reasoning * price.get("reasoning", price["output"])
    ) / 1e6


def ledger(policy: Path) -> list[dict]:
    """The ledger records of a policy's state store."""
    from router import load_policy
    from router.engine.ledger import records
    from router.state import open_store

    state = load_policy(policy).state
    store = open_store(state.backend, state.path, state.url or "")
    try:
        return list(records(store))
    finally:
        store.close()


def semantic_entries(policy: Path) -> int:
    """How many answers the policy's store holds in its semantic log (LiteLLM stores an answer in a
    background task after it has gone out)."""
    from router import load_policy
    from router.cache.service import ENTRIES_LOG
    from router.state import open_store

    state = load_policy(policy).state
    store = open_store(state.backend, state.path, state.url or "")
    try:
        return len(store.read(ENTRIES_LOG, None, 1_000_000))
    finally:
        store.close()


def ledger_records(
    policy: Path, count: int, keep: Callable[[dict], bool] = lambda record: True, timeout: float = 15.0
) -> list[dict]:
    """The ledger records `keep` accepts, once there are at least `count` of them (spend settles and
    the ledger is written after the answer has gone out)."""

    def enough() -> list[dict] | None:
        found = [record for record in ledger(policy) if keep(record)]
        return found if len(found) >= count else None

    return poll_until(enough, timeout, f"{count} ledger records")


def auth_config(workdir: Path, entries: list[dict] | None = None) -> Path:
    """config.yaml with tenant keys for its custom_auth (router.adapter.auth) besides the master key:
    `entries` (the key file's, e.g. {key, team, tags, alias, metadata}), by default TENANT_KEYS."""
    import yaml

    keys = workdir / "keys.yaml"
    entries = entries if entries is not None else [{"key": k, "team": t} for k, t in TENANT_KEYS.items()]
    keys.write_text(yaml.safe_dump({"keys": entries}))
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert config["general_settings"]["custom_auth"] == "router.adapter.auth.authenticate"
    config["callback_settings"]["router"]["keys"] = str(keys)
    path = workdir / "config-auth.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_proxy(
    simulator: Simulator,
    policy: Path,
    workdir: Path,
    config: Path = ROOT / "config.yaml",
    workers: int = 1,
    **env: str,
) -> Proxy:
    """`litellm --config config.yaml` as a real process, routed by `policy`, upstream the simulator;
    `env`: more of its environment."""
    full = procs.clean_env(
        LITELLM_MASTER_KEY=MASTER_KEY,
        ROUTER_POLICY=str(policy),
        **simulator_env(f"{simulator.url}/v1"),
        ROUTER_RELOAD_INTERVAL="0.2",
        **env,
    )
    log = workdir / f"proxy-{procs.free_port()}.log"
    proc, url = procs.start_proxy(config, full, log, workers)
    return Proxy(proc, url, log)


@contextmanager
def proxy_pair(simulator: Simulator, policy: Path, workdir: Path) -> Iterator[tuple[Proxy, Proxy]]:
    """Two proxy processes on one policy (as two instances of a deployment on one shared store);
    both stop at the end, also when the second fails to start."""
    first = start_proxy(simulator, policy, workdir)
    try:
        second = start_proxy(simulator, policy, workdir)
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def ascii_texts(count: int = 400, seed: int = 7) -> list[str]:
    """Edge cases, then random text: every ASCII character (controls and Python's odd white space
    \\x1c-\\x1f among them), repeated words (counts above one), text past MAX_CHARS."""
    rng = random.Random(seed)
    words = ["The", "cat", "sat", "on", "the", "mat", "x1", "2", "_", "foo_bar", "e-mail", "C++", "3.14"]
    texts = ["", "   ", "a", "a a a b b a b", "Hello, World! foo_bar __x__ e=mc^2\x1c\x1dq\x7f\x00", "x" * 5000]
    texts.append(" ".join(["repeat"] * 3000))  # cut at MAX_CHARS in the middle of a word
    for _ in range(count):
        texts.append("".join(rng.choice(string.printable + "\x00\x01\x1c\x1f\x7f") for _ in range(rng.randint(0, 300))))
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(0, 80))))
    return texts
