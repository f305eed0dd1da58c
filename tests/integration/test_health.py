"""Model health on real stores: instances share figures and shift states, outages lose no counts,
and `router status` shows what the store holds."""

from __future__ import annotations

import io
import time

import pytest

from router import CompiledPolicy, parse_policy, route_body
from router.engine.health import Health
from router.ops.cli import main
from router.state import open_store

POLICY_TEXT = """
version: 1
models:
  flash: {target: g-flash, context: 128k}
  pro: {target: g-pro, context: 200k}
routes:
  - {name: default, use: flash, fallbacks: [pro]}
shifts:
  - {name: slow, watch: flash, when: {p95_latency: 1s, window: 30s, min_samples: 10}, to: pro, hold: 20s}
state: %s
"""


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "redis"])
def setup(request, tmp_path):
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        state = f'{{backend: redis, url: "{url}"}}'
        stores = [open_store("redis", url=url) for _ in range(2)]
    else:
        state = f"{{backend: sqlite, path: {tmp_path / 'state.db'}}}"
        stores = [open_store("sqlite", path=str(tmp_path / "state.db")) for _ in range(2)]
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_TEXT % state)
    compiled = CompiledPolicy(parse_policy(path.read_text()))
    yield compiled, stores, path
    for store in stores:
        store.close()


def ask(compiled):
    return route_body(compiled, {"model": "auto", "messages": [{"role": "user", "content": "hi"}]})


def test_a_shift_seen_by_one_instance_applies_on_the_other(setup):
    compiled, (store_a, store_b), _ = setup
    clock = Clock()
    a, b = (Health(store, lambda: compiled, clock=clock) for store in (store_a, store_b))
    for i in range(12):
        a.record("g-flash", "d1", latency=0.2 if i < 6 else 2.5)  # half slow: p95 well above 1 s
    a.tick()
    b.tick()  # b recorded nothing itself
    assert b.states["slow"].phase == "shifted" and a.states["slow"].phase == "shifted"
    moved = b.reroute(ask(compiled))
    assert (moved.target, moved.shifted_from) == ("g-pro", "g-flash")
    clock.now += 21
    b.tick()
    a.tick()
    assert a.states["slow"].phase == b.states["slow"].phase == "probing"


def test_holds_reach_every_instance_and_expire(setup):
    compiled, (store_a, store_b), _ = setup
    clock = Clock()
    a, b = (Health(store, lambda: compiled, clock=clock) for store in (store_a, store_b))
    a.hold("g-flash", 5)
    a.tick()
    b.tick()
    assert b.reroute(ask(compiled)).target == "g-pro"
    clock.now += 6
    b.tick()
    assert b.reroute(ask(compiled)).target == "g-flash"


def test_status_prints_the_shared_figures_and_shifts(setup):
    compiled, (store, _), path = setup
    health = Health(store, lambda: compiled)
    for latency in [0.1] * 8 + [3.0] * 4:
        health.record("g-flash", "dep-1", latency=latency)
    health.record("g-pro", None, error=True)
    health.tick()
    out = io.StringIO()
    assert main(["status", "--policy", str(path)], stdout=out) == 0
    text = out.getvalue()
    flash = next(line for line in text.splitlines() if line.strip().startswith("g-flash"))
    assert flash.split()[1] == "12" and "3.0" in flash.split()[4]  # requests, p95
    assert "#dep-1" in text and "100%" in next(line for line in text.splitlines() if "g-pro" in line)
    assert "slow: flash -> pro when p95_latency > 1 | SHIFTED" in text
    out = io.StringIO()
    assert main(["status", "--policy", str(path), "--json", "--window", "1m"], stdout=out) == 0
    assert '"phase": "shifted"' in out.getvalue()
    assert main(["status", "--policy", str(path), "--window", "soon"]) == 2


def test_counts_wait_out_a_redis_outage(redis_server, tmp_path):
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    compiled = CompiledPolicy(parse_policy(POLICY_TEXT % f'{{backend: redis, url: "{redis_server.url}"}}'))
    store = open_store("redis", url=redis_server.url)
    health = Health(store, lambda: compiled)
    health.record("g-flash", None, latency=0.5)
    redis_server.stop()
    try:
        health.record("g-flash", None, latency=0.5)
        health.tick()  # unreachable: kept, not lost
        assert sum(f["n"] for f in health.tally.pending.values()) == 2
    finally:
        redis_server.start()
    time.sleep(1.1)  # the store fails fast for a second after an outage
    health.tick()
    assert health.figures("g-flash", 60).requests == 2
    store.close()


def test_a_hung_model_shifts_before_its_attempts_end(setup):
    compiled, (store, _), _ = setup
    clock = Clock()
    health = Health(store, lambda: compiled, clock=clock)
    for i in range(10):
        health.begin(f"call-{i}", "g-flash")
    clock.now += 0.5
    health.tick()
    assert health.states["slow"].phase == "normal"  # running, but not yet past the 1 s threshold
    clock.now += 1.0
    health.tick()
    assert health.states["slow"].phase == "shifted" and "over 10 samples" in health.states["slow"].reason
    assert health.end("call-0", "g-flash") == clock.now - 1.5  # an attempt that ends leaves the in-flight set
    assert health.end("call-1", "g-pro") is None  # not the group it began at
    health.record("g-flash", None, latency=2.0)
    assert len(health.in_flight) == 9
