"""Shared fixtures: real processes (simulator, Redis) on free loopback ports. Helpers: tests/helpers.py."""

from __future__ import annotations

import pytest

from tests.helpers import Simulator, procs


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = procs.RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server):
    """The shared Redis server, running and emptied for this test."""
    if redis_server.proc is None:
        redis_server.start()
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url
