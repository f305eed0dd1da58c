"""The engine's runtime, given what needs LiteLLM: embeddings from a model group, keep-alive pings
through the Router, the response cache installed as LiteLLM's, and a shutdown that waits for
LiteLLM's last success events before the figures are written out."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

import litellm

from router.adapter.cache_backend import PolicyCache
from router.adapter.litellm_api import CACHE_CALLBACK, GLOBAL_LOGGING_WORKER, Cache, CacheMode
from router.cache.embedders import Embedder, local_embedder
from router.engine.policy_file import PolicyFile
from router.engine.runtime import Ping, Runtime, build_runtime

log = logging.getLogger("router")
SHUTDOWN_WAIT = 10.0  # seconds the shutdown waits for LiteLLM's last success events


def start(policy: PolicyFile, router_of=lambda: None, write_behind: bool = False) -> Runtime:
    """`router_of()`: the LiteLLM Router calls go through (the proxy builds its own after our callback).
    `write_behind`: cache answers wait for the writer thread (router.engine.runtime.build_runtime)."""
    runtime = build_runtime(
        policy,
        functools.partial(_embedder, router_of=router_of),
        functools.partial(_pinger, router_of),
        write_behind,
    )
    runtime.health.region_of = _regions(router_of)
    if runtime.cache is not None:
        assert runtime.pipeline.cache_rules is not None  # built together with the cache
        backend = PolicyCache(runtime.cache, policy, runtime.pipeline.cache_rules, inline=not runtime.remote)
        # The proxy's shutdown reaches us through the cache backend's disconnect().
        backend.on_disconnect = functools.partial(shutdown, runtime)
        _install_cache(backend)
    return runtime


async def shutdown(runtime: Runtime) -> None:
    """The proxy is stopping (its requests in flight have finished): let LiteLLM's queued success
    events settle their spend, then write everything out."""
    try:
        await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), SHUTDOWN_WAIT)
    except TimeoutError:
        log.warning("shutdown: LiteLLM's success events did not all arrive within %.0fs", SHUTDOWN_WAIT)
    await asyncio.to_thread(runtime.close)


def _embedder(name: str, router_of) -> Embedder:
    """Loaded here, at start-up, ahead of any request."""
    found = local_embedder(name)
    if found is not None:
        return found
    from router.adapter.embedder import LiteLLMEmbedder

    return LiteLLMEmbedder(name, router_of)


def _regions(router_of) -> Callable[[str], str | None]:
    """A deployment's `litellm_params.region_name` in the Router's model list, looked up once each."""
    known: dict[str, str | None] = {}

    def region_of(deployment: str) -> str | None:
        if deployment not in known:
            router = router_of()
            if router is None:
                return None  # not built yet: ask again next time
            found = router.get_deployment(model_id=deployment)
            known[deployment] = getattr(found.litellm_params, "region_name", None) if found is not None else None
        return known[deployment]

    return region_of


def _pinger(router_of) -> Ping | None:
    router = router_of()
    if router is None:
        return None

    def ping(target: str) -> None:
        router.completion(
            model=target,
            messages=[{"role": "user", "content": "ping"}],
            max_tokens=1,
            num_retries=0,
            metadata={"router_keepalive": True},
        )

    return ping


def _install_cache(backend: PolicyCache) -> None:
    """Make the backend LiteLLM's response cache for chat calls."""
    # Opt-in mode: only requests the pipeline marked touch the cache at all.
    # max_messages=None: the policy decides what is cached, long conversations included.
    litellm.cache = Cache(
        _backend=backend,
        mode=CacheMode.default_off,
        supported_call_types=["acompletion", "completion"],
        max_messages=None,
    )
    # Cache() also registers a "cache" logging callback that nothing acts on (lookups and stores
    # run in LiteLLM's caching handler), yet it makes every request run the sync success handler
    # on a worker thread: measured ~1.5% of the proxy's CPU. Take it out.
    for callbacks in (litellm.input_callback, litellm.success_callback, litellm._async_success_callback):
        while CACHE_CALLBACK in callbacks:
            callbacks.remove(CACHE_CALLBACK)
