"""Model health on the state store: every instance adds its requests' figures to shared time
buckets, reads the shared figures back, moves the policy's shift rules on them, and applies the
active shifts and the providers' retry-after holds to the requests it routes.

The request path only touches memory (a counter, a dict lookup); the store is written and read by
`tick`, on the runtime's sync loop, in one round trip each way.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from router.core.decide import CompiledPolicy, Decision
from router.core.shifts import NORMAL, Active, ShiftState, active_shifts, reroute, step
from router.core.windows import BUCKET_SECONDS, Figures, Mirror, Tally, bucket_key, bucket_of, overdue
from router.policy.schema import ModelSpec
from router.state import StateStore, StoreUnavailable

if TYPE_CHECKING:
    from router.engine.metrics import Metrics
    from router.engine.webhooks import Notifier

log = logging.getLogger("router")
SUBJECTS = "win:subjects"  # field per model group (and deployment) that has figures
MIN_HORIZON = 300.0  # seconds of buckets kept, at least: `router status` shows 5 minutes
RECENT = 3 * BUCKET_SECONDS  # buckets re-read every tick: other instances may still be adding to them
STATE_TTL = 7 * 86400.0


SHIFT_LOG = "shifts"
SHIFT_LOG_LENGTH = 10_000  # changes of phase kept, for the report's timeline


def shift_key(rule: str) -> str:
    return f"shift:{rule}"


def hold_key(target: str) -> str:
    return f"hold:{target}"


def region_subject(target: str, region: str) -> str:
    """The figures of a model group's deployments in one region (a group in several regions)."""
    return f"{target}@{region}"


class Health:
    def __init__(
        self,
        store: StateStore,
        current: Callable[[], CompiledPolicy],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.store = store
        self.current = current
        self.clock = clock
        self.rng = rng or random.Random()
        self.tally = Tally()
        self.mirror = Mirror(self.horizon)
        self.states: dict[str, ShiftState] = {}
        self.active: dict[str, Active] = {}  # watched model -> its shift; replaced whole by `tick`
        self.held: dict[str, float] = {}  # model group -> until when its provider asked us to wait
        self._new_holds: dict[str, float] = {}
        self.last_seen: dict[str, float] = {}  # model group -> when this instance last heard from it
        self.in_flight: dict[str, tuple[str, float]] = {}  # attempt (LiteLLM call id) -> (model group, start)
        self._reported: dict[str, float] = {}  # call ids whose failures the deployment hook reported -> when
        self._loaded: set[str] = set()
        self._lock = threading.Lock()  # the event loop records while the sync thread drains
        # The region a deployment runs in (the adapter asks LiteLLM's Router): its attempts count for
        # the region too, so that a model group in several regions has figures per region.
        self.region_of: Callable[[str], str | None] = lambda deployment: None
        self.metrics: Metrics | None = None
        self.notifier: Notifier | None = None  # webhook alerts of shifts starting and ending

    def longest_attempt(self) -> float:
        compiled = self.current()
        timeouts = [route.timeout for route in compiled.policy.routes if route.timeout is not None]
        return max([compiled.settings.timeout, *timeouts]) + 2 * BUCKET_SECONDS

    @property
    def horizon(self) -> float:
        windows = [rule.when.window for rule in self.current().policy.shifts]
        return max([MIN_HORIZON, *windows]) + 2 * BUCKET_SECONDS

    # -- the request path ------------------------------------------------------------------------

    def begin(self, attempt: str, target: str) -> None:
        self.in_flight[attempt] = (target, self.clock())

    def end(self, attempt: str | None, target: str | None) -> float | None:
        """The attempt at `target` is over: when it began, or None when it was not in flight.

        The proxy reuses one call id for every retry and fallback of a request, and the attempts
        run one after another, so the entry is always the latest attempt's."""
        found = self.in_flight.get(attempt) if attempt is not None else None
        if attempt is None or found is None or found[0] != target:
            return None
        del self.in_flight[attempt]
        return found[1]

    def mark_reported(self, attempt: str | None) -> None:
        """The deployment hook counted a failure of this call: its logged failure event is a duplicate."""
        if attempt:
            self._reported[attempt] = self.clock()

    def reported(self, attempt: str | None) -> bool:
        return attempt in self._reported

    def record(
        self,
        target: str,
        deployment: str | None,
        latency: float | None = None,
        ttft: float | None = None,
        error: bool = False,
    ) -> None:
        subjects = [target]
        if deployment:
            subjects.append(f"{target}#{deployment}")
            region = self.region_of(deployment)
            if region:
                subjects.append(region_subject(target, region))
        now = self.clock()
        with self._lock:
            self.tally.record(subjects, now, latency, ttft, error)
        self.last_seen[target] = now
        if self.metrics is not None:
            self.metrics.attempt(target, deployment, latency, ttft, error)

    def hold(self, target: str, seconds: float) -> None:
        """A provider answered 429 with retry-after: send it nothing for `seconds`, on every instance."""
        now = self.clock()
        with self._lock:
            current = self.held.get(target, 0.0)
            if now + seconds > current:
                self.held[target] = self._new_holds[target] = now + seconds
        if current <= now:  # one line per hold, not one per 429 of a burst
            log.info("'%s' rate limited by its provider: held for %.1fs", target, seconds)

    def reroute(self, decision: Decision) -> Decision:
        if not self.active and not self.held:
            return decision  # the usual case: nothing degraded, nothing held
        return reroute(
            self.current(),
            decision,
            self.active,
            self.held,
            self.clock(),
            self.rng.random(),
            self.rng.randrange(1 << 30),
        )

    # -- the sync loop ---------------------------------------------------------------------------

    def tick(self) -> None:
        now = self.clock()
        try:
            self._flush(now)
            self._pull(now)
            self._evaluate(now)
        except StoreUnavailable:
            pass  # figures wait in the tally; shifts stay as they were until the store returns

    def _flush(self, now: float) -> None:
        with self._lock:
            pending, holds, self._new_holds = self.tally.drain(), self._new_holds, {}
        counts: dict = {bucket_key(subject, start): fields for (subject, start), fields in pending.items()}
        if pending:
            counts[SUBJECTS] = {subject: 1 for subject, _ in pending}
        try:
            self.store.tally(counts, self.horizon)
        except StoreUnavailable:
            self._keep(pending, holds)
            raise
        waiting = list(holds.items())
        for i, (target, until) in enumerate(waiting):
            try:
                self.store.set(hold_key(target), repr(until).encode(), max(until - now, 0.001))
            except StoreUnavailable:
                self._keep({}, dict(waiting[i:]))
                raise

    def _keep(self, pending: dict, holds: dict) -> None:
        """Put back what the store could not take, for the next tick: no count is lost or added twice."""
        with self._lock:
            for (subject, start), fields in pending.items():
                mine = self.tally.pending.setdefault((subject, start), {})
                for field, amount in fields.items():
                    mine[field] = mine.get(field, 0) + amount
            for target, until in holds.items():
                self._new_holds[target] = max(until, self._new_holds.get(target, 0.0))

    def _pull(self, now: float) -> None:
        self.load(now, self.horizon, recent_only=True)
        targets = sorted({spec.target for spec in self.current().policy.models.values()})
        shared = self.store.get_many([hold_key(t) for t in targets])
        with self._lock:
            for target, raw in zip(targets, shared):
                if raw is not None:
                    self.held[target] = max(self.held.get(target, 0.0), float(raw))
            self.held = {t: until for t, until in self.held.items() if until > now}

    def load(self, now: float, span: float, recent_only: bool = False) -> list[str]:
        """Read the shared buckets into the mirror: all of `span` for subjects seen the first time,
        the last few seconds for the others. Returns the subjects."""
        subjects = sorted(self.store.tallies([SUBJECTS])[0])
        wanted = []
        for subject in subjects:
            since = now - (RECENT if recent_only and subject in self._loaded else span)
            wanted += [(subject, start) for start in range(bucket_of(since), bucket_of(now) + 1, BUCKET_SECONDS)]
        rows = self.store.tallies([bucket_key(subject, start) for subject, start in wanted])
        for (subject, start), fields in zip(wanted, rows):
            self.mirror.put(subject, start, fields)
        self._loaded.update(subjects)
        self.mirror.horizon = max(self.horizon, span)
        self.mirror.prune(now)
        # Attempts whose end was never seen (a client gone mid-stream) are forgotten once no attempt
        # could still be running: each is cut off at its timeout.
        oldest = now - self.longest_attempt()
        for attempt, (_, began) in list(self.in_flight.items()):
            if began < oldest:
                self.in_flight.pop(attempt, None)
        for attempt, when in list(self._reported.items()):
            if when < oldest:
                self._reported.pop(attempt, None)
        return subjects

    def _evaluate(self, now: float) -> None:
        compiled = self.current()
        rules = compiled.policy.shifts
        stored = self.store.get_many([shift_key(rule.key) for rule in rules])
        states = {}
        for rule, raw in zip(rules, stored):
            state = ShiftState.loads(raw)
            targets = tuple(_subject(compiled.spec(m), rule.region) for m in compiled.watched(rule))
            # `step` calls it before the loop moves on: the loop variables are still this rule's.
            new = step(rule, state, lambda since: self._figures(rule, targets, since, now), now)  # noqa: B023
            if new != state:
                self.store.set(shift_key(rule.key), new.dumps(), STATE_TTL)
                log.warning("shift '%s': %s -> %s (%s)", rule.key, state.phase, new.phase, new.reason)
                if state.phase != new.phase:
                    self._history(rule, state, new, now)
                if self.notifier is not None and NORMAL in (state.phase, new.phase) and state.phase != new.phase:
                    self.notifier.shift(rule.key, rule.watched, new.phase != NORMAL, new.count, new.reason)
            states[rule.key] = new
        self.states = states
        self.active = active_shifts(compiled, states)
        if self.metrics is not None:
            self.metrics.shifts((rule.key, rule.watched, states[rule.key].phase) for rule in rules)

    def _history(self, rule, old: ShiftState, new: ShiftState, now: float) -> None:
        """Each change of phase, in the store's `shifts` log: the report's timeline."""
        entry = {"t": now, "rule": rule.key, "watch": rule.watched, "from": old.phase, "to": new.phase}
        entry["reason"] = new.reason
        self.store.append(SHIFT_LOG, json.dumps(entry).encode(), SHIFT_LOG_LENGTH)

    def _figures(self, rule, targets: tuple[str, ...], since: float, now: float) -> Figures:
        """The shared figures of the watched model groups together, plus this instance's attempts
        that are already slower than a latency rule's threshold while still running."""
        if not rule.when.metric.endswith("_latency"):
            return self.mirror.figures(targets, since, now)
        # Attempts in flight are known by group, not region: a region of a group in several has none here.
        ages = [now - start for group, start in list(self.in_flight.values()) if group in targets and start >= since]
        return self.mirror.figures(targets, since, now, overdue(ages, rule.when.threshold))

    def figures(self, subject: str, window: float) -> Figures:
        now = self.clock()
        return self.mirror.figures(subject, now - window, now)


def _subject(spec: ModelSpec, region: str | None) -> str:
    """What a shift rule watching `region` (or a model, with None) reads of a model: its group's
    figures, or its deployments' in that region when the group runs in several."""
    return region_subject(spec.target, region) if region and len(spec.region) > 1 else spec.target
