"""Fixtures of the integration tests."""

from __future__ import annotations

import pytest

from router.state import open_store


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    """Each of the three state stores in turn (a module may define its own `store` instead)."""
    if request.param == "redis":
        made = open_store("redis", url=request.getfixturevalue("redis_url"))
    else:
        made = open_store(request.param, path=str(tmp_path / "state.db"))
    yield made
    made.close()
