"""Building what a policy asks for at start-up: the state store, the response cache, budgets, the
ledger and model health, and the background loop that keeps them in step with the shared store."""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import litellm
from litellm.caching.caching import Cache, CacheMode
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

from router import spill
from router.adapter.accounting import Accounting
from router.adapter.cache_backend import PolicyCache
from router.budgets import BudgetBook
from router.cache.service import ResponseCache
from router.health import Health
from router.ledger import Ledger
from router.policy.reload import PolicyFile
from router.state import StateStore, open_store

log = logging.getLogger("router")
SYNC_INTERVAL = 0.5  # seconds between replays of shared cache entries and flushes of held-back writes
SHUTDOWN_WAIT = 10.0  # seconds the shutdown waits for LiteLLM's last success events


class KeepAlive:
    """Pings each model that has `keepalive` set with a one-token request when it has been idle
    that long, so that providers with cold starts stay warm. Runs on the sync thread."""

    def __init__(self, policy: PolicyFile, health: Health, router_of):
        self.policy = policy
        self.health = health
        self.router_of = router_of

    def tick(self) -> None:
        router = self.router_of()
        if router is None:
            return
        now = time.time()
        for spec in self.policy.current.policy.models.values():
            if spec.keepalive and now - self.health.last_seen.get(spec.target, 0.0) >= spec.keepalive:
                self.health.last_seen[spec.target] = now  # one ping per interval, whatever its outcome
                # Its own thread: a slow model must not hold up the sync loop.
                threading.Thread(target=self._ping, args=(router, spec.target), daemon=True).start()

    @staticmethod
    def _ping(router, target: str) -> None:
        try:
            router.completion(model=target, messages=[{"role": "user", "content": "ping"}], max_tokens=1, num_retries=0,
                              metadata={"router_keepalive": True})
        except Exception as exc:  # a failed ping is the model's health, which the callbacks record
            log.info("keep-alive ping to '%s' failed: %s", target, type(exc).__name__)


@dataclass
class Runtime:
    store: StateStore
    accounting: Accounting
    cache: PolicyCache | None
    health: Health
    keepalive: KeepAlive
    remote: bool = False  # the store is across a network: keep its calls off the event loop
    spill_to: Path | None = None  # where what the store cannot take at the end waits for the next start
    closed: threading.Event = field(default_factory=threading.Event)

    async def run(self, fn, *args):
        """Call `fn` on a worker thread when the store is remote; inline when it is local (SQLite and
        memory calls take ~0.1 ms, less than the hop to a thread)."""
        return await asyncio.to_thread(fn, *args) if self.remote else fn(*args)

    def tick(self) -> None:
        self.health.tick()
        self.keepalive.tick()
        if self.cache is not None:
            self.cache.service.sync()
        self.accounting.book.flush()
        self.accounting.ledger.flush()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="router-state-sync", daemon=True).start()

    def _loop(self) -> None:
        while not self.closed.wait(SYNC_INTERVAL):
            try:
                self.tick()
            except Exception:  # the loop must outlive one bad entry or store hiccup
                log.exception("state sync failed; retrying")

    async def shutdown(self) -> None:
        """The proxy is stopping (its requests in flight have finished): let LiteLLM's queued success
        events settle their spend, then write everything out."""
        try:
            await asyncio.wait_for(GLOBAL_LOGGING_WORKER.flush(), SHUTDOWN_WAIT)
        except asyncio.TimeoutError:
            log.warning("shutdown: LiteLLM's success events did not all arrive within %.0fs", SHUTDOWN_WAIT)
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Stop the sync loop, write pending figures, spend and ledger records to the store (to a
        file for the next start when it cannot take them), close it. Once; also at exit."""
        if self.closed.is_set():
            return
        self.closed.set()
        book, ledger = self.accounting.book, self.accounting.ledger
        spend, records = book.backlog, ledger.backlog
        try:
            self.tick()
        except Exception:  # a failing store must not stop the rest of the shutdown
            log.exception("shutdown: the last write to the state store failed")
        kept = spill.save(self.spill_to, book, ledger)
        if kept is not None:
            log.warning("shutdown: the state store is unreachable: %d spend changes and %d ledger records are kept in "
                        "%s and written at the next start", book.backlog, ledger.backlog, kept)
        elif book.backlog or ledger.backlog:
            log.error("shutdown: %d spend changes and %d ledger records could not be written", book.backlog, ledger.backlog)
        else:
            log.info("shutdown: figures, spend and ledger written to the state store (%d held back by an outage); "
                     "store closed", spend + records)
        self.store.close()


def build_runtime(policy: PolicyFile, router_of=lambda: None) -> Runtime:
    """`state` and the embedder are read once: changing them needs a restart."""
    spec = policy.current.policy
    store = open_store(spec.state.backend, spec.state.path, spec.state.url or "")
    health = Health(store, lambda: policy.current)
    runtime = Runtime(store, Accounting(policy, BudgetBook(store), Ledger(store)), _build_cache(policy, store, router_of),
                      health, KeepAlive(policy, health, router_of), remote=spec.state.backend == "redis",
                      spill_to=spill.directory(spec.state.backend, spec.state.path))
    spill.restore(runtime.spill_to, runtime.accounting.book, runtime.accounting.ledger)
    runtime.tick()
    runtime.start()
    # The proxy's shutdown reaches us through the cache backend's disconnect(); a process that ends
    # otherwise (the SDK's, or a proxy without a response cache) writes out at exit.
    atexit.register(runtime.close)
    if runtime.cache is not None:
        runtime.cache.on_disconnect = runtime.shutdown
    _install_cache(runtime.cache)
    log.info("state on %s; %d budgets; response cache %s", spec.state.backend, len(spec.budgets),
             "off" if runtime.cache is None else "on")
    return runtime


def _build_cache(policy: PolicyFile, store: StateStore, router_of) -> PolicyCache | None:
    spec = policy.current.policy
    if spec.cache is None:
        return None
    embedder = _embedder(spec.cache.semantic.embedder, router_of) if spec.cache.semantic.enabled else None
    service = ResponseCache(store, embedder, spec.cache.exact.max_entries, spec.cache.semantic.max_entries)
    log.info("response cache: semantic tier %s", embedder.name if embedder else "off")
    return PolicyCache(service, policy)


def _embedder(name: str, router_of):
    if name == "local":
        from router.cache.embedders import MiniLMEmbedder

        return MiniLMEmbedder()
    from router.adapter.embedder import LiteLLMEmbedder

    return LiteLLMEmbedder(name, router_of)


def _install_cache(backend: PolicyCache | None) -> None:
    """Make the backend LiteLLM's response cache for chat calls (None leaves LiteLLM's own setting)."""
    if backend is None:
        return
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
