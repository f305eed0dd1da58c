"""Building what a policy asks for at start-up: the state store, the response cache, budgets, the
ledger, model health and the request pipeline over them, and the background loop that keeps them in
step with the shared store. The adapter hands in what needs LiteLLM (embeddings from a model group,
keep-alive pings)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from router.cache.embedders import Embedder, EmbedderUnavailable, Shared
from router.cache.service import ResponseCache
from router.engine import spill
from router.engine.accounting import Accounting
from router.engine.affinity import Conversations
from router.engine.budget_book import BudgetBook
from router.engine.health import Health
from router.engine.ledger import Ledger
from router.engine.metrics import Metrics
from router.engine.pipeline import Pipeline
from router.engine.policy_file import PolicyFile
from router.engine.sink import RecordSink
from router.engine.webhooks import Notifier
from router.policy.schema import Policy
from router.state import StateStore, open_store

Ping = Callable[[str], None]  # one cheap request to a model group

log = logging.getLogger("router")
SYNC_INTERVAL = 0.5  # seconds between replays of shared cache entries and health figures
# Seconds between writes of the spend and ledger records requests left: one store transaction (one
# round trip) for all of them, instead of two a request. The reservation's worst case counts until
# its settlement is written, so no limit can be overrun meanwhile.
WRITE_INTERVAL = 0.05
# The ledger's records (and the rollups and metrics they feed) go out less often: most of a write's
# cost is per transaction, file and batch, and a batch of 200 ms costs each record about half what
# one of 50 ms does. A killed process loses at most this much of its records.
LEDGER_INTERVAL = 0.2


class KeepAlive:
    """Pings each model that has `keepalive` set with a one-token request when it has been idle
    that long, so that providers with cold starts stay warm. Runs on the sync thread."""

    def __init__(self, policy: PolicyFile, health: Health, pinger: Callable[[], Ping | None]):
        self.policy = policy
        self.health = health
        self.pinger = pinger  # the ping function, or None while there is nothing to ping with

    def tick(self) -> None:
        ping = self.pinger()
        if ping is None:
            return
        now = time.time()
        for spec in self.policy.current.policy.models.values():
            if spec.keepalive and now - self.health.last_seen.get(spec.target, 0.0) >= spec.keepalive:
                self.health.last_seen[spec.target] = now  # one ping per interval, whatever its outcome
                # Its own thread: a slow model must not hold up the sync loop.
                threading.Thread(target=self._ping, args=(ping, spec.target), daemon=True).start()

    @staticmethod
    def _ping(ping: Ping, target: str) -> None:
        try:
            ping(target)
        except Exception as exc:  # a failed ping is the model's health, which the callbacks record
            log.info("keep-alive ping to '%s' failed: %s", target, type(exc).__name__)


@dataclass
class Runtime:
    store: StateStore
    accounting: Accounting
    cache: ResponseCache | None
    health: Health
    keepalive: KeepAlive
    pipeline: Pipeline
    remote: bool = False  # the store is across a network, or embeddings are slow: keep them off the event loop
    spill_to: Path | None = None  # where what the store cannot take at the end waits for the next start
    metrics: Metrics | None = None  # None: the policy turned them off
    notifier: Notifier | None = None  # None: no `webhook` section
    closed: threading.Event = field(default_factory=threading.Event)
    ledger_written: float = 0.0  # time.monotonic() of the ledger's last write
    _later: deque[tuple[Callable[..., None], tuple]] = field(default_factory=deque)  # see `later`

    def later(self, fn: Callable[..., None], *args) -> None:
        """Call `fn(*args)` on the writer thread, before its next write."""
        self._later.append((fn, args))

    def _run_later(self) -> None:
        while self._later:
            fn, args = self._later.popleft()
            try:
                fn(*args)
            except Exception:  # one bad event must not cost the others their settlement
                log.exception("a deferred step failed")

    async def run(self, fn, *args):
        """Call `fn` on a worker thread when the store is remote or the embedder slow; inline
        otherwise (SQLite and memory calls and the local embedder take ~0.1 ms, less than the hop
        to a thread)."""
        return await asyncio.to_thread(fn, *args) if self.remote else fn(*args)

    def tick(self) -> None:
        self.health.tick()
        self.keepalive.tick()
        if self.metrics is not None:
            self.metrics.flush()
        if self.cache is not None:
            self.cache.sync()
        self.write()

    def write(self) -> None:
        """Spend and conversations, and every LEDGER_INTERVAL (and at the end) the ledger records
        that were waiting before the spend was written: a request's settlement waits before its
        record does, so a reader that sees a record sees its spend."""
        self._run_later()
        ledger = self.accounting.ledger
        ready = ledger.backlog
        self.accounting.book.flush()
        if self.cache is not None:
            self.cache.flush()  # the answers saved since: this instance's in-process tier has them already
        now = time.monotonic()
        if now - self.ledger_written >= LEDGER_INTERVAL or self.closed.is_set():
            self.ledger_written = now
            ledger.flush(ready)
        self.pipeline.conversations.flush()

    def start(self) -> None:
        if self.notifier is not None:
            self.notifier.start()
        threading.Thread(
            target=self._loop, args=(self.tick, SYNC_INTERVAL), name="router-state-sync", daemon=True
        ).start()
        threading.Thread(
            target=self._loop, args=(self.write, WRITE_INTERVAL), name="router-writer", daemon=True
        ).start()

    def _loop(self, step: Callable[[], None], interval: float) -> None:
        while not self.closed.wait(interval):
            try:
                step()
            except Exception:  # the loop must outlive one bad entry or store hiccup
                log.exception("state sync failed; retrying")

    def close(self) -> None:
        """Stop the sync loop, write pending figures, spend and ledger records to the store (to a
        file for the next start when it cannot take them), close it. Once; also at exit."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._run_later()  # settled into the leases before they go back
        book, ledger = self.accounting.book, self.accounting.ledger
        book.retire()
        spend, records = book.backlog, ledger.backlog
        try:
            self.tick()
        except Exception:  # a failing store must not stop the rest of the shutdown
            log.exception("shutdown: the last write to the state store failed")
        if self.notifier is not None:
            self.notifier.close()  # alerts still queued go out while the store is open to claim them
        kept = spill.save(self.spill_to, book, ledger)
        if kept is not None:
            log.warning(
                "shutdown: the state store is unreachable: %d spend changes and %d ledger records are kept in "
                "%s and written at the next start",
                book.backlog,
                ledger.backlog,
                kept,
            )
        elif book.backlog or ledger.backlog:
            log.error(
                "shutdown: %d spend changes and %d ledger records could not be written", book.backlog, ledger.backlog
            )
        else:
            log.info(
                "shutdown: figures, spend and ledger written to the state store (%d spend changes, leases "
                "going back and records were still waiting); store closed",
                spend + records,
            )
        self.store.close()


def build_runtime(
    policy: PolicyFile,
    embedder_for: Callable[[str], Embedder],
    pinger: Callable[[], Ping | None] = lambda: None,
    write_behind: bool = False,
) -> Runtime:
    """`state` and the embedder are read once: changing them needs a restart. `embedder_for` makes
    the embedder the policy's semantic cache names. `write_behind`: the cache's answers wait for
    the writer thread (the proxy: off its event loop); without it they are written by the call
    that saves them (the SDK: its next call finds them)."""
    spec = policy.current.policy
    store = open_store(spec.state.backend, spec.state.path, spec.state.url or "")
    health = Health(store, lambda: policy.current)
    metrics = Metrics(spec.metrics.labels) if spec.metrics.enabled else None
    notifier = Notifier(store, spec.webhook) if spec.webhook is not None else None
    health.metrics, health.notifier = metrics, notifier
    book, ledger = BudgetBook(store, write_behind=True), _ledger(spec, store, metrics)
    accounting = Accounting(policy, book, ledger, metrics, notifier)
    pipeline = build_pipeline(policy, store, embedder_for, health, accounting, write_behind)
    runtime = Runtime(
        store,
        accounting,
        pipeline.cache,
        health,
        KeepAlive(policy, health, pinger),
        pipeline,
        remote=spec.state.backend == "redis" or not _quick_embedder(spec),
        spill_to=spill.directory(spec.state.backend, spec.state.path),
        metrics=metrics,
        notifier=notifier,
    )
    spill.restore(runtime.spill_to, accounting.book, accounting.ledger)
    runtime.tick()
    runtime.start()
    # The proxy's shutdown reaches us through the cache backend's disconnect(); a process that ends
    # otherwise (the SDK's, or a proxy without a response cache) writes out at exit.
    atexit.register(runtime.close)
    log.info(
        "state on %s; %d budgets; response cache %s",
        spec.state.backend,
        len(spec.budgets),
        "off" if pipeline.cache is None else "on",
    )
    return runtime


def build_pipeline(
    policy: PolicyFile,
    store: StateStore,
    embedder_for: Callable[[str], Embedder],
    health: Health,
    accounting: Accounting,
    write_behind: bool = False,
) -> Pipeline:
    """The request pipeline over `store`: the proxy's and the SDK's, and a replay's (on a memory
    store, its accounting's clock reading the recorded times, which the cache and affinity share).
    Loads the embedder and checks the classifier against it. `write_behind`: a writer thread
    flushes the cache's answers; without it they are written at once."""
    spec, clock = policy.current.policy, accounting.clock
    embedder = _shared_embedder(spec, embedder_for)
    _check_classifier(spec, embedder)
    policy.use(embedder)
    cache = _build_cache(policy, store, embedder, embedder_for, clock, write_behind)
    return Pipeline(policy, health, accounting, cache, Conversations(store, clock), accounting.metrics)


def _ledger(spec: Policy, store: StateStore, metrics: Metrics | None) -> Ledger:
    """The ledger the policy's `ledger` section asks for; read once, like `state` and `metrics`."""
    config = spec.ledger
    sink = None
    if config.records is not None and (spec.state.backend != "memory" or config.records.path):
        where = config.records.path or str(Path(spec.state.path).parent / "ledger")
        sink = RecordSink(where, config.records.retention)
    observe = metrics.records if metrics is not None else None
    return Ledger(store, write_behind=True, rollup_ttl=config.rollups, sink=sink, observe=observe)


def _embedder_name(spec: Policy) -> str | None:
    """The one embedder of the process: the semantic cache's, else the one routes by meaning use
    (the loader checked that both name the same); None when nothing embeds."""
    semantic = spec.cache.semantic if spec.cache is not None else None
    if semantic is not None and semantic.enabled:
        return semantic.embedder
    if spec.routes_by_meaning:
        return spec.settings.embedder
    return None


def _shared_embedder(spec: Policy, embedder_for: Callable[[str], Embedder]) -> Shared | None:
    name = _embedder_name(spec)
    if name is None:
        return None
    try:
        return Shared(embedder_for(name))
    except (EmbedderUnavailable, OSError, ImportError) as exc:  # a model file missing or unreadable
        # Requests are never failed for want of it: the cache's exact tier still serves, and routes
        # by meaning stand aside for the others.
        log.error("semantic tier off, routes by meaning stand aside: embedder '%s' unavailable: %s", name, exc)
        return None


def _check_classifier(spec: Policy, embedder: Embedder | None) -> None:
    """The loader checked that the classifier names the policy's embedder; this checks that the
    embedder running here gives vectors of the size it was learned on (a model file rebuilt with
    other dimensions does not). Its routes stand aside otherwise (CompiledPolicy.verdict)."""
    learned = spec.learned
    if learned is None or embedder is None:
        return
    learned_on, gives = learned.model.embedding_weights.shape[1], embedder.embed("dimension check").shape[0]
    if learned_on != gives:
        log.error(
            "learned routes stand aside: the classifier was learned on %d-dimensional embeddings, and embedder "
            "'%s' gives %d: learn it again (python -m router learn)",
            learned_on,
            embedder.name,
            gives,
        )


def _quick_embedder(spec: Policy) -> bool:
    """No embedder the request path waits on, or only the local static one (a model on torch
    takes tens of milliseconds, an embedding model group a network round trip)."""
    semantic = spec.cache.semantic if spec.cache is not None else None
    verified = semantic is not None and semantic.enabled and semantic.verify is not None
    return _embedder_name(spec) in (None, "local") and not verified


def _build_cache(
    policy: PolicyFile,
    store: StateStore,
    embedder: Shared | None,
    embedder_for: Callable[[str], Embedder],
    clock: Callable[[], float],
    write_behind: bool,
) -> ResponseCache | None:
    spec = policy.current.policy
    if spec.cache is None:
        return None
    semantic = spec.cache.semantic
    verifier = None
    if semantic.enabled and embedder is not None and semantic.verify:
        try:
            verifier = Shared(embedder_for(semantic.verify))
        except (EmbedderUnavailable, OSError, ImportError) as exc:
            # Hits the policy wants verified are not served unverified: the semantic tier goes off.
            log.error("response cache: semantic tier off: the verifier is unavailable: %s", exc)
            embedder = None
    if not semantic.enabled:
        embedder = None
    log.info(
        "response cache: semantic tier %s%s",
        embedder.name if embedder else "off",
        f", hits verified by {verifier.name}" if verifier else "",
    )
    return ResponseCache(
        store, embedder, spec.cache.exact.max_entries, semantic.max_entries, verifier, clock, write_behind
    )
