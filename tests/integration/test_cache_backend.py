"""The cache backend as LiteLLM's admin endpoints see it: `/cache/ping` masks and serialises
`vars(litellm.cache)` recursively, which must stay small however much the cache holds."""

from __future__ import annotations

import json
from pathlib import Path

from litellm.caching.caching import Cache, CacheMode
from litellm.litellm_core_utils.sensitive_data_masker import SensitiveDataMasker

from router.adapter.cache_backend import PolicyCache
from router.cache.embedders import StaticEmbedder
from router.cache.rules import RuleBook
from router.cache.service import ResponseCache
from router.engine.policy_file import PolicyFile
from router.state import open_store

ROOT = Path(__file__).resolve().parents[2]


class Runtime:
    """Holds the backend, whose shutdown hook points back at it: the cycle a real runtime makes."""

    def __init__(self, backend: PolicyCache):
        self.cache = backend
        backend.on_disconnect = self.shutdown

    async def shutdown(self) -> None:
        return None


def test_the_cache_object_litellm_inspects_is_small():
    backend = PolicyCache(
        ResponseCache(open_store("memory"), StaticEmbedder(), 100, 1000),
        PolicyFile(ROOT / "policies" / "default.yaml"),
        RuleBook(),
    )
    Runtime(backend)
    assert set(vars(backend)) <= {"default_ttl", "_parts"}  # the embedder, LRU, index and runtime stay out of sight
    cache = Cache(_backend=backend, mode=CacheMode.default_off, supported_call_types=["acompletion"], max_messages=None)
    shown = json.dumps(SensitiveDataMasker().mask_dict(vars(cache)), default=str)  # what /cache/ping does
    assert len(shown) < 5_000 and "<router response cache>" in shown
