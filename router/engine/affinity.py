"""Conversation affinity: a later turn of a conversation goes to the route and model its first turn
was given, on any instance, as long as the policy's `affinity.ttl` since the last turn. What each
conversation was given lives in the state store; the turns' writes wait for the writer thread
(one round trip for all of them), and this instance reads its own waiting writes first."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

from router.core.conversation import conversation_of
from router.core.decide import CompiledPolicy, Decision, pinned
from router.core.request import Identity
from router.policy.crossref import EXPLICIT_ROUTE
from router.state import StateStore

log = logging.getLogger("router")
PREFIX = "affinity:"
MAX_WAITING = 50_000  # writes kept while the store is unreachable; the oldest give way beyond
_WARN_EVERY = 60.0
_FIELDS = {"route", "model", "since", "turns"}


class Conversations:
    def __init__(self, store: StateStore, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        # key -> (value, ttl), not yet in the store; made JSON by the writer, off the request path
        self._waiting: dict[str, tuple[dict, float]] = {}
        self._lock = threading.Lock()
        self._warned = 0.0

    def steer(
        self, compiled: CompiledPolicy, body, identity: Identity, decision: Decision
    ) -> tuple[Decision, str | None]:
        """The decision for this turn and what affinity did: "kept" (an earlier turn's route and
        model), "started" (this turn's are remembered for the next), or None (not applied)."""
        settings = compiled.policy.affinity
        if settings is None or decision.route == EXPLICIT_ROUTE or decision.model is None:
            return decision, None
        conversation = conversation_of(body, identity, settings.session_fields)
        if conversation is None:
            return decision, None
        key = PREFIX + conversation.key
        now = self.clock()
        earlier = self._read(key) if conversation.later else None
        if earlier is not None:
            turn = earlier["turns"] + 1
            reason = (
                f"conversation affinity: turn {turn} stays on route '{earlier['route']}' and model "
                f"'{earlier['model']}' (chosen {now - earlier['since']:.0f}s ago, by {conversation.by})"
            )
            kept = pinned(compiled, decision, earlier["route"], earlier["model"], reason)
            if kept is not None:
                self._write(key, {**earlier, "turns": turn}, settings.ttl)
                return kept, "kept"
        self._write(key, {"route": decision.route, "model": decision.model, "since": now, "turns": 1}, settings.ttl)
        return decision, "started"

    def flush(self) -> None:
        """Write the waiting turns in one round trip (on the writer thread); kept for the next
        flush when the store cannot take them."""
        with self._lock:
            batch, self._waiting = self._waiting, {}
        if not batch:
            return
        try:
            self.store.set_many([(key, json.dumps(value).encode(), ttl) for key, (value, ttl) in batch.items()])
        except Exception as exc:
            with self._lock:
                merged = {**batch, **self._waiting}
                self._waiting = dict(list(merged.items())[-MAX_WAITING:])
            self._warn(f"conversation affinity: the state store took no writes ({exc}); retrying")

    def _read(self, key: str) -> dict | None:
        with self._lock:
            waiting = self._waiting.get(key)
        if waiting is not None:
            return waiting[0]
        try:
            raw = self.store.get(key)
        except Exception as exc:  # the store is down: this turn is routed afresh
            self._warn(f"conversation affinity: the state store is unreachable ({exc}); turns are routed afresh")
            return None
        if raw is None:
            return None
        try:
            earlier = json.loads(raw)
        except ValueError:
            return None
        return earlier if isinstance(earlier, dict) and set(earlier) >= _FIELDS else None

    def _write(self, key: str, value: dict, ttl: float) -> None:
        with self._lock:
            self._waiting[key] = (value, ttl)

    def _warn(self, message: str) -> None:
        if time.monotonic() - self._warned >= _WARN_EVERY:
            self._warned = time.monotonic()
            log.warning(message)
