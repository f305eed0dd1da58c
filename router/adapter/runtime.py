"""Building the pieces a policy asks for at start-up: the state store, the embedder, the response cache."""

from __future__ import annotations

import logging

import litellm
from litellm.caching.caching import Cache, CacheMode

from router.adapter.cache_backend import PolicyCache
from router.cache.service import ResponseCache
from router.policy.reload import PolicyFile
from router.state import open_store

log = logging.getLogger("router")


def build_cache(policy: PolicyFile, router_of=lambda: None) -> PolicyCache | None:
    """The cache backend the policy's `cache` section describes, already filled from the shared log.

    `state` and the embedder are read once: changing them needs a restart (a reload says so)."""
    spec = policy.current.policy
    if spec.cache is None:
        return None
    store = open_store(spec.state.backend, spec.state.path, spec.state.url or "")
    embedder = None
    if spec.cache.semantic.enabled:
        embedder = _embedder(spec.cache.semantic.embedder, router_of)
    service = ResponseCache(store, embedder, spec.cache.exact.max_entries, spec.cache.semantic.max_entries)
    loaded = service.sync()
    service.start_sync()
    log.info("response cache on %s state; semantic tier %s (%d entries loaded)", spec.state.backend,
             embedder.name if embedder else "off", loaded)
    return PolicyCache(service, policy)


def _embedder(name: str, router_of):
    if name == "local":
        from router.cache.embedders import MiniLMEmbedder

        return MiniLMEmbedder()
    from router.adapter.embedder import LiteLLMEmbedder

    return LiteLLMEmbedder(name, router_of)


def install_cache(backend: PolicyCache | None) -> None:
    """Make the backend LiteLLM's response cache for chat calls (None leaves LiteLLM's own setting)."""
    if backend is not None:
        # Opt-in mode: only requests that PolicyCache.opt_in marked touch the cache at all.
        # max_messages=None: the policy decides what is cached, long conversations included.
        litellm.cache = Cache(_backend=backend, mode=CacheMode.default_off,
                              supported_call_types=["acompletion", "completion"], max_messages=None)
        # Cache() also registers a "cache" logging callback that nothing in 1.106.2 acts on (lookups
        # and stores run in LiteLLM's caching handler), yet it makes every request run the sync
        # success handler on a worker thread: measured ~1.5% of the proxy's CPU. Take it out.
        for callbacks in (litellm.input_callback, litellm.success_callback, litellm._async_success_callback):
            while "cache" in callbacks:
                callbacks.remove("cache")
