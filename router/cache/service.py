"""The response cache: exact and semantic lookups over two tiers, scoped per tenant.

Tier 1 is a bounded in-process LRU; tier 2 the shared state store (SQLite or Redis). Semantic
entries go to a log in the store as well, and every instance replays that log into its own
vector index, so an answer cached through one instance serves them all. A store outage degrades
to the in-process tier: lookups miss, answers are kept locally, nothing fails.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from router.cache import keys
from router.cache.embedders import Embedder
from router.cache.guard import Candidate, choose
from router.cache.index import Entry, VectorIndex
from router.cache.lru import LRU
from router.cache.rules import CacheRule
from router.core.request import Identity
from router.state.protocol import StateStore, StoreUnavailable

ENTRIES_LOG = "cache:semantic"
_RECORD = "cache:r:"
_CANDIDATES = 4


@dataclass(frozen=True)
class CacheRequest:
    route: str
    identity: Identity
    messages: list
    params: dict
    rule: CacheRule


@dataclass(frozen=True)
class Hit:
    kind: str  # "exact" or "semantic"
    score: float
    response: str  # the stored answer, as JSON
    stored_at: float
    key: str  # the exact key the answer is stored under

    @property
    def label(self) -> str:
        return "exact" if self.kind == "exact" else f"semantic;score={self.score:.2f}"


@dataclass
class _Pending:
    """A miss, kept until its answer is stored: what the lookup worked out is not worked out again
    (the embedding least of all). No text when the request has no semantic part."""

    request: CacheRequest
    partition: str | None = None
    text: str | None = None
    vector: np.ndarray | None = None


@dataclass
class Stats:
    exact: int = 0
    semantic: int = 0
    miss: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def take(self) -> dict[str, float]:
        """The counts since the last take, zeroed."""
        with self.lock:
            out = {"exact": self.exact, "semantic": self.semantic, "miss": self.miss}
            self.exact = self.semantic = self.miss = 0
        return {k: v for k, v in out.items() if v}


class ResponseCache:
    """`verifier`: a second model that re-scores a semantic hit before it is served (the policy's
    `verify`), or None."""

    def __init__(
        self,
        store: StateStore,
        embedder: Embedder | None,
        lru_entries: int,
        max_vectors: int,
        verifier: Embedder | None = None,
        clock: Callable[[], float] = time.time,
        write_behind: bool = False,
    ):
        """`write_behind`: answers go to the store and the vector index with the next `flush`
        (the runtime's writer thread), not on the request path; this instance's in-process tier
        serves them at once."""
        self.store = store
        self.write_behind = write_behind
        # Answers saved and not yet written: (key, stored at, answer JSON, ttl, semantic entry or None).
        self._unwritten: deque[tuple[str, float, str, float, tuple[str, np.ndarray, Entry] | None]] = deque()
        self.clock = clock
        self.embedder = embedder
        self.verifier = verifier
        self.lru: LRU[tuple[float, str]] = LRU(lru_entries)
        self.index = VectorIndex(max_vectors)
        self.stats = Stats()
        self._pending: LRU[_Pending] = LRU(1024)  # vectors of misses, kept until their answer is stored
        # Requests a semantic hit answered: the same request again, under the same rule, gets the
        # same answer without an embedding or a search (a hit is not stored under its own key).
        self._matched: LRU[tuple[CacheRule, Hit]] = LRU(4096)
        self._log_position: str | None = None

    # -- lookups ---------------------------------------------------------------------------------

    def lookup(self, request: CacheRequest, key: str | None = None) -> tuple[Hit | None, str]:
        """A stored answer for the request, or None; and a few words on why. `key`: the request's
        exact key (`key_of`), when the caller has it. A miss is remembered for `save_pending`."""
        rule, now = request.rule, self.clock()
        key = key or self.key_of(request)
        if rule.exact:
            record = self._record(key)
            if record is not None and now - record[0] <= rule.exact_ttl:
                return self._count(Hit("exact", 1.0, record[1], record[0], key)), "same request"
        if not (rule.semantic and self.embedder):
            self._pending.put(key, _Pending(request))
            return self._count(None), "no exact match"
        again = self._matched_before(key, rule, now)
        if again is not None:
            return self._count(again), "asked before: its earlier match"
        pending = _Pending(request)
        self._pending.put(key, pending)
        hit, why = self._semantic(request, pending, now)
        if hit is not None:
            self._pending.pop(key)  # a hit is not stored again
            self._matched.put(key, (rule, hit))
        return self._count(hit), why

    def _matched_before(self, key: str, rule: CacheRule, now: float) -> Hit | None:
        earlier = self._matched.get(key)
        if earlier is None or earlier[0] != rule:
            return None
        match = earlier[1]
        record = self._record(match.key)  # as stored now: it may have been stored again since
        if record is None or now - record[0] > rule.semantic_ttl:
            return None
        return Hit("semantic", match.score, record[1], record[0], match.key)

    def answer(self, key: str) -> tuple[float, str] | None:
        """The answer stored under an exact key (a hit's `key`): when it was stored, and its JSON."""
        return self._record(key)

    def _semantic(self, request: CacheRequest, pending: _Pending, now: float) -> tuple[Hit | None, str]:
        if not self._embedded(pending):
            return None, "the last message is not a plain user question"
        text, partition, vector = pending.text, pending.partition, pending.vector
        assert text is not None and partition is not None and vector is not None
        found = self.index.search(partition, vector, _CANDIDATES, now)
        best, why = choose(
            text,
            [Candidate(s, e.text, e.key) for s, e in found],
            request.rule.threshold,
            request.rule.margin,
            request.rule.tiebreak,
        )
        if best is None:
            return None, why
        if self.verifier is not None:
            second = float(self.verifier.embed(text) @ self.verifier.embed(best.text))
            if second < request.rule.verify_threshold:
                return None, f"{why}, but {self.verifier.name} scores it {second:.3f}"
        record = self._record(best.key)
        if record is None or now - record[0] > request.rule.semantic_ttl:
            return None, "the matching answer has expired"
        return Hit("semantic", best.score, record[1], record[0], best.key), why

    def _embedded(self, pending: _Pending) -> bool:
        """Fill in the request's question, partition and vector; False when it has no plain
        question to embed."""
        request = pending.request
        pending.text = keys.semantic_text(request.messages)
        if pending.text is None:
            return False
        scope = keys.scope_of(request.identity, request.rule.semantic_scope)
        pending.partition = keys.partition_key(scope, request.route, request.messages, request.params)
        assert self.embedder is not None  # the semantic tier runs only with one
        pending.vector = self.embedder.embed(pending.text)
        return True

    def _record(self, key: str) -> tuple[float, str] | None:
        record = self.lru.get(key)
        if record is not None:
            return record
        try:
            raw = self.store.get(_RECORD + key)
        except StoreUnavailable:
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        record = (data["t"], data["r"])
        self.lru.put(key, record)
        return record

    def _count(self, hit: Hit | None) -> Hit | None:
        with self.stats.lock:
            if hit is None:
                self.stats.miss += 1
            elif hit.kind == "exact":
                self.stats.exact += 1
            else:
                self.stats.semantic += 1
        return hit

    # -- storing ---------------------------------------------------------------------------------

    def save(self, request: CacheRequest, response_json: str, response: dict, key: str | None = None) -> bool:
        """Keep a complete answer in both tiers (and the semantic log); False when it may not be cached."""
        if not keys.is_complete(response):
            return False
        rule, now = request.rule, self.clock()
        key = key or self.key_of(request)
        self.lru.put(key, (now, response_json))
        pending = self._pending.pop(key)
        semantic = None
        if rule.semantic and self.embedder:
            semantic = self._semantic_entry(request, key, now, pending)
        self._unwritten.append((key, now, response_json, rule.record_ttl, semantic))
        if not self.write_behind:
            self.flush()
        return True

    def save_pending(self, key: str, response_json: str, response: dict) -> bool | None:
        """`save` for a request `lookup` missed, by its exact key; None when that miss is no longer
        remembered (the caller saves it the long way)."""
        pending = self._pending.get(key)
        return None if pending is None else self.save(pending.request, response_json, response, key)

    def _semantic_entry(
        self, request: CacheRequest, key: str, now: float, pending: _Pending | None
    ) -> tuple[str, np.ndarray, Entry] | None:
        if pending is None:
            pending = _Pending(request)
        if pending.vector is None and not self._embedded(pending):
            return None
        assert pending.partition is not None and pending.text is not None and pending.vector is not None
        return pending.partition, pending.vector, Entry(pending.text, key, now + request.rule.semantic_ttl)

    def flush(self) -> None:
        """Write the answers saved since the last flush: each record in the store, each semantic
        entry in this instance's index and the shared log, in one round trip each. During a store
        outage they are kept in this instance only (the store has logged the outage)."""
        saved = []
        while self._unwritten:
            saved.append(self._unwritten.popleft())
        if not saved:
            return
        records = [
            (_RECORD + key, json.dumps({"t": at, "r": answer}).encode(), ttl) for key, at, answer, ttl, _ in saved
        ]
        model = self.embedder.name if self.embedder is not None else ""  # only an embedder makes entries
        entries = [semantic for *_, semantic in saved if semantic is not None]
        by_partition: dict[str, dict[str, tuple[np.ndarray, Entry]]] = {}
        for partition, vector, entry in entries:  # an answer saved twice since is indexed once
            by_partition.setdefault(partition, {}).setdefault(entry.key, (vector, entry))
        for partition, items in by_partition.items():  # one insert a partition
            self.index.add_many(partition, np.stack([v for v, _ in items.values()]), [e for _, e in items.values()])
        payloads = []
        for partition, vector, entry in entries:
            payload = {
                "m": model,
                "p": partition,
                "k": entry.key,
                "x": entry.text,
                "e": entry.expires,
                "v": base64.b64encode(vector.astype(np.float32).tobytes()).decode(),
            }
            payloads.append(json.dumps(payload).encode())
        try:
            self.store.set_many(records)
            if payloads:
                self.store.append_many(ENTRIES_LOG, payloads, self.index.max_entries)
        except StoreUnavailable:
            pass

    @staticmethod
    def key_of(request: CacheRequest) -> str:
        """The request's exact key: its scope, route, messages and answer parameters."""
        scope = keys.scope_of(request.identity, request.rule.exact_scope)
        return keys.exact_key(scope, request.route, request.messages, request.params)

    # -- sharing across instances ------------------------------------------------------------------

    def sync(self, batch: int = 1000) -> int:
        """Replay new entries of the shared log into the local index; flush counters. Returns entries added."""
        added, now = 0, self.clock()
        try:
            self._flush_stats()
            while True:
                rows = self.store.read(ENTRIES_LOG, self._log_position, batch)
                for entry_id, raw in rows:
                    self._log_position = entry_id
                    added += self._replay(json.loads(raw), now)
                if len(rows) < batch:
                    return added
        except StoreUnavailable:
            return added

    def _replay(self, item: dict, now: float) -> int:
        # Vectors of another model (a store written before the embedder changed) mean nothing next
        # to this one's, and another width cannot even share its index.
        if item["e"] <= now or self.embedder is None or item.get("m") != self.embedder.name:
            return 0
        vector = np.frombuffer(base64.b64decode(item["v"]), dtype=np.float32)
        return int(self.index.add(item["p"], vector, Entry(item["x"], item["k"], item["e"])))

    def _flush_stats(self) -> None:
        for name, amount in self.stats.take().items():
            self.store.incr(f"stats:cache:{name}", amount)
