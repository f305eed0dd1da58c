"""Webhook alerts from the proxy itself (policy `webhook`): a budget scope passing a share of its
limit (50, 80, 100 % by default) in its window, and a shift rule starting and ending, as
Slack-compatible JSON (`text`, plus the event's fields under `router`).

Never on the request path: an admission or a shift evaluation only queues the event; a thread of
its own sends it. At most one message per event, whatever the number of workers and instances: the
first to claim the event in the state store (an `incr` that returns 1) sends it, and retries it
with a growing pause when the receiver fails; an event still unsent after the retries is logged."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from router.policy.observe import WebhookConfig
from router.state import StateStore, StoreUnavailable

log = logging.getLogger("router.webhooks")
_QUEUE_LIMIT = 1000  # events waiting to be sent; more are dropped with a log line (a receiver down for long)


@dataclass(frozen=True)
class Event:
    key: str  # one message per key, ever (within `ttl`)
    ttl: float
    text: str
    fields: dict = field(default_factory=dict)


class Notifier:
    def __init__(
        self,
        store: StateStore,
        config: WebhookConfig,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store = store
        self.config = config
        self.client = httpx.Client(timeout=config.timeout, transport=transport)
        self.sleep = sleep
        self._queue: queue.Queue[Event | None] = queue.Queue(_QUEUE_LIMIT)
        self._claimed: dict[str, float] = {}  # keys this process has seen claimed -> until when
        self._thread: threading.Thread | None = None

    # -- queued by the engine ----------------------------------------------------------------------

    def budget(self, standing: list[tuple[str, str, float, float, str, str, float]]) -> None:
        """An admission's standing: (budget, unit, limit, total, scope, period, ttl) per counter."""
        now = time.time()
        if len(self._claimed) > _QUEUE_LIMIT * 10:
            self._claimed = {key: until for key, until in self._claimed.items() if until > now}
        for budget, unit, limit, total, scope, period, ttl in standing:
            for threshold in self.config.thresholds:
                if not limit or total / limit < threshold:
                    break
                key = f"budget:{budget}:{unit}:{scope}:{period}:{threshold:g}"
                if self._claimed.get(key, 0.0) > now:
                    continue  # the usual case once a scope is over: a dict lookup
                self._claimed[key] = now + ttl
                text = f"Budget '{budget}' at {threshold:.0%} for {scope}: {total:.4g} of {limit:g} {unit} ({period})"
                fields: dict[str, object] = {"kind": "budget", "budget": budget, "unit": unit, "scope": scope}
                fields.update(window=period, threshold=threshold, limit=limit, total=total)
                self._put(Event(key, ttl, text, fields))

    def shift(self, rule: str, watch: str, started: bool, count: int, reason: str) -> None:
        """A shift rule's traffic moved off its model (`started`), or came back."""
        what = "start" if started else "end"
        text = (
            f"Shift '{rule}' started: traffic moved off {watch} ({reason})"
            if started
            else f"Shift '{rule}' ended: traffic back on {watch}"
        )
        fields = {"kind": f"shift_{what}", "rule": rule, "watch": watch, "count": count, "reason": reason}
        self._put(Event(f"shift:{rule}:{count}:{what}", 7 * 86400.0, text, fields))

    def _put(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.error("webhook: %d alerts waiting already; dropped: %s", _QUEUE_LIMIT, event.text)

    # -- the sender thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="router-webhooks", daemon=True)
        self._thread.start()

    def close(self, wait: float = 5.0) -> None:
        """Send what is queued (for up to `wait` seconds), then stop."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(wait)
        self.client.close()

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self.send(event)
            except Exception:  # the thread must outlive one bad event
                log.exception("webhook: could not send %s", event.key)

    def send(self, event: Event) -> bool:
        """Claim the event and post it, retrying; False when another process claimed it or it failed."""
        try:
            if self.store.incr(f"webhook:{event.key}", 1.0, event.ttl) != 1.0:
                return False  # another worker or instance has it
        except StoreUnavailable:
            pass  # no way to agree with the others: better twice than never
        body = {"text": event.text, "router": event.fields}
        pause = 1.0
        for attempt in range(1, self.config.retries + 2):
            try:
                answer = self.client.post(self.config.url, json=body)
                if answer.status_code < 300:
                    return True
                problem = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                problem = str(exc) or type(exc).__name__
            if attempt <= self.config.retries:
                self.sleep(pause)
                pause = min(pause * 2, 30.0)
        log.error("webhook: %s not delivered after %d attempts (%s)", event.key, self.config.retries + 1, problem)
        return False
