"""Budgets over the state store: reserve a request's worst case before the call, settle to its real
cost after, release on failure. Reservations are atomic in the store (a SQLite transaction, a Redis
Lua script), so concurrent requests on any number of instances cannot slip past a limit together.
The store records each reservation, and settles it in one step: a store that lost its data (a
Redis restarted empty) has no record, and gets the real cost added, not a delta that would drive
its counters below zero and open the budget.

When the store is unreachable, requests are admitted unchecked rather than refused, and their
spend is kept in a backlog that is written as soon as the store answers again: spend is never lost.

With `settings.budget_lease`, a counter's requests draw on a lease (router.engine.leases) instead
of a reservation each; near a limit, where no lease fits, they are reserved one by one again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from zoneinfo import ZoneInfo

from router.core.budgets import ZERO, Amounts, Span, Spans, applies, limits, scopes, worst_case
from router.core.decide import CompiledPolicy
from router.core.eligibility import ANYONE, Eligibility
from router.core.request import Identity
from router.engine.leases import MIN_ASKS, Lease, Leases
from router.engine.output_history import OutputHistory
from router.engine.reservation import Exceeded, Hold, Reservation
from router.policy.schema import Budget
from router.state.protocol import WRITE_BATCH, Ask, Settlement, StateStore, StoreUnavailable

log = logging.getLogger("router")


# (budget, unit, limit, total, scope, period, ttl): a counter's total after a reservation, the window
# it counts (its calendar bucket, or the rolling window), and how long that window lasts.
Standing = tuple[str, str, float, float, str, str, float]
# (keys, unit, limit, ttl, soft, (budget, unit, span, scope)): one counter a request draws on
_Counter = tuple[tuple[str, ...], str, float, float, bool, tuple[Budget, str, Span, str]]
_KEPT = 4096  # senders, routes and models whose counters are kept; then the book starts afresh


def _standing(budget: Budget, unit: str, limit: float, total: float, scope: str, span: Span) -> Standing:
    if budget.window.startswith("rolling "):
        return budget.name, unit, limit, total, scope, budget.window, float(budget.window.split()[1])
    return budget.name, unit, limit, total, scope, span.buckets[-1], span.ttl


def _holds(asks: list[Ask], owners: list, reserved: bool, leased: dict[int, Lease] | None = None) -> tuple[Hold, ...]:
    """Each ask's counter with what it added (nothing when the store could not be reached) and the
    lease it was drawn on, if it was."""
    leased = leased or {}
    return tuple(
        Hold(
            ask.keys[-1],
            unit,
            ask.amount if reserved or i in leased else 0.0,
            ask.ttl,
            budget.name,
            scope,
            leased[i].hold if i in leased else "",
        )
        for i, (ask, (budget, unit, _, scope)) in enumerate(zip(asks, owners))
    )


@dataclass
class Admission:
    model: str | None  # the policy model that will serve: the decision's, or a downgrade
    reservation: Reservation = field(default_factory=Reservation)
    warnings: list[str] = field(default_factory=list)  # budgets over their limit that only warn
    downgraded_from: str | None = None
    downgraded_by: str | None = None  # the budget that did
    rejected: Exceeded | None = None
    tightest: tuple[str, str, float] | None = None  # (budget, unit, remaining) closest to its limit
    standing: list[Standing] = field(default_factory=list)  # every limited counter, after this reservation
    unchecked: bool = False  # the store was down: admitted without a check


class BudgetBook:
    def __init__(self, store: StateStore, write_behind: bool = False, clock: Callable[[], float] = time.time):
        self.store = store
        self.write_behind = write_behind  # settlements wait for `flush`, which writes them in one step
        self.clock = clock  # when leases fall idle
        self.outputs = OutputHistory()
        self.leases = Leases()
        self._leased_for: CompiledPolicy | None = None  # the policy the leases were taken under
        self._spans = Spans()
        self._counted: dict[tuple, tuple[float, float, list[_Counter]]] = {}  # see `_counters`
        self._counted_for: CompiledPolicy | None = None
        self._backlog: deque[tuple[str | None, list[Settlement]]] = deque()  # settlements the store missed
        self._lock = threading.Lock()

    def admit(
        self,
        compiled: CompiledPolicy,
        route: str,
        model: str | None,
        identity: Identity,
        tags: tuple[str, ...],
        prompt_tokens: int,
        max_tokens: int | None,
        now: float | None = None,
        answers: int = 1,
        eligible: Eligibility = ANYONE,
    ) -> Admission:
        """Reserve what the request is expected to spend in every budget that applies (its prompt, and
        the output `reserve_output` says, bounded by the client's `max_tokens`, for each of its
        `answers`), downgrading (to a model the request may use: `eligible`) or rejecting as told."""
        now = time.time() if now is None else now
        tried, by = [model], None
        while True:
            output = self._output(compiled, route, tried[-1], max_tokens) * answers
            admission = self._reserve_all(compiled, route, tried[-1], identity, tags, prompt_tokens, output, now)
            exceeded = admission.rejected
            if exceeded is None or exceeded.budget.on_exceed != "downgrade":
                break
            ladder = [compiled.canonical(m) for m in exceeded.budget.to]
            cheaper = next((m for m in ladder if m not in tried and compiled.allows(eligible, m)), None)
            if cheaper is None:
                break
            tried.append(cheaper)
            by = exceeded.budget.name
        if len(tried) > 1 and admission.rejected is None:
            admission.downgraded_from, admission.downgraded_by = tried[0], by
        return admission

    def _output(self, compiled: CompiledPolicy, route: str, model: str | None, max_tokens: int | None) -> int:
        how = compiled.settings.reserve_output
        learned = None if how == "worst_case" or model is None else self.outputs.estimate(route, model, how)
        if learned is None:
            return max_tokens or compiled.settings.default_output_tokens
        return min(learned, max_tokens) if max_tokens else learned

    def _reserve_all(self, compiled, route, model, identity, tags, prompt_tokens, max_output, now) -> Admission:
        """One atomic reservation across every budget, scope and unit that applies to `model`.

        A model group the policy does not price (a request naming it directly) reserves nothing but
        still draws on the budgets: it is refused when they are spent, and settles at LiteLLM's price."""
        priced = model is not None and compiled.resolve(model) is not None
        estimate = worst_case(compiled.spec(model).price, prompt_tokens, max_output) if priced else ZERO
        asks, owners = [], []
        for keys, unit, limit, ttl, soft, owner in self._counters(compiled, route, model, identity, tags, now):
            asks.append(Ask(keys, estimate.of(unit), limit, ttl, soft))
            owners.append(owner)
        if not asks:
            return Admission(model)
        if compiled.settings.budget_lease:
            return self._from_leases(compiled, model, asks, owners, now)
        hold = uuid.uuid4().hex
        try:
            reserved = self.store.reserve(asks, hold)
        except StoreUnavailable:  # admit unchecked; the settlement still finds the counters
            return Admission(model, reservation=Reservation(None, _holds(asks, owners, reserved=False)), unchecked=True)
        if reserved.refused is not None:
            return _refusal(model, asks, owners, reserved.refused, reserved.totals[reserved.refused])
        return _admitted(model, hold, asks, owners, reserved.totals, reserved.over)

    def _counters(self, compiled, route, model, identity, tags, now) -> list[_Counter]:
        """The counters a request draws on. They depend only on who sends it, its route and model
        and the windows' current buckets, so they are worked out once a second for each (windows
        and key names cost ~30 us a request on the proxy's cold caches) and kept while the clock
        stays within that second and the windows' buckets."""
        if compiled is not self._counted_for or len(self._counted) >= _KEPT:
            self._counted, self._counted_for = {}, compiled
        key = (route, model, identity, tags)
        found = self._counted.get(key)
        if found is not None and found[0] <= now < found[1]:
            return found[2]
        tz, until, counters = ZoneInfo(compiled.settings.timezone), now + 1.0, []
        for budget in compiled.policy.budgets:
            if not applies(budget, route, model):
                continue
            span = self._spans.of(budget.window, now, tz)
            until = min(until, span.reset_at)
            for scope in scopes(budget, identity, route, model, tags):
                for unit, limit in limits(budget):
                    keys = tuple(f"budget:{budget.name}:{unit}:{scope}:{b}" for b in span.buckets)
                    counters.append(
                        (keys, unit, limit, span.ttl, budget.on_exceed == "warn", (budget, unit, span, scope))
                    )
        self._counted[key] = (now, until, counters)
        return counters

    def _from_leases(
        self, compiled: CompiledPolicy, model: str | None, asks: list[Ask], owners: list, now: float
    ) -> Admission:
        """The asks its counters' leases hold are drawn on them; a counter without one asks the store
        for a new lease (its ask plus `budget_lease` of its limit); the asks left (the store had no
        room for a lease, or a lease would hold too few asks) are reserved as without leases."""
        if compiled is not self._leased_for:  # the limits may have changed: leases of the old ones go back
            self._return(self.leases.close_all())
            self._leased_for = compiled
        leased = self.leases.take(asks, now)
        try:
            for i, ask in enumerate(asks):
                block = (ask.limit or 0.0) * compiled.settings.budget_lease
                if i in leased or block < MIN_ASKS * ask.amount or not self.leases.may_ask(ask.keys[-1], now):
                    continue
                lease = self._grant(ask, block, now)
                if lease is not None:
                    leased[i] = lease
            rest = [i for i in range(len(asks)) if i not in leased]
            hold = uuid.uuid4().hex if rest else None
            reserved = self.store.reserve([asks[i] for i in rest], hold) if rest else None
        except StoreUnavailable:  # the asks no lease holds go unchecked; the settlement still finds the counters
            reservation = Reservation(None, _holds(asks, owners, reserved=False, leased=leased))
            return Admission(model, reservation=reservation, unchecked=True)
        totals = [lease.total() if (lease := leased.get(i)) else 0.0 for i in range(len(asks))]
        over = [lease.over(ask) if (lease := leased.get(i)) else False for i, ask in enumerate(asks)]
        if reserved is not None:
            if reserved.refused is not None:
                self._return(self.leases.give_back(leased, asks))
                refused = rest[reserved.refused]
                return _refusal(model, asks, owners, refused, reserved.totals[reserved.refused])
            for j, i in enumerate(rest):
                totals[i], over[i] = reserved.totals[j], reserved.over[j]
        return _admitted(model, hold, asks, owners, totals, over, leased)

    def _grant(self, ask: Ask, block: float, now: float) -> Lease | None:
        """A new lease on the ask's counter, drawn on by the ask; None when the store has no room
        for it (the counter is then reserved exactly for a while). Raises StoreUnavailable."""
        hold, grant = uuid.uuid4().hex, ask.amount + block
        reserved = self.store.reserve([replace(ask, amount=grant)], hold)
        if reserved.refused is not None:
            self._return(self.leases.refused(ask.keys[-1], now))
            return None
        lease = Lease(hold, ask.keys[-1], grant, reserved.totals[0], ask.ttl, now, drawn=ask.amount, open=1)
        self._return(self.leases.add(lease))
        return lease

    def settle(self, reservation: Reservation, actual: Amounts) -> None:
        """Turn a reservation into the real spend: at once, or with the next `flush` when the book
        writes behind (until then the reservation's worst case still counts: a limit holds). What
        was drawn on a lease only moves the lease's figure, unless the lease went back already."""
        if not reservation.holds:
            return
        direct, unheld, due = [], [], []
        for h in reservation.holds:
            spent = actual.of(h.unit)
            if not h.lease:
                direct.append(Settlement(h.key, h.amount, spent, h.ttl))
                continue
            here, done = self.leases.settle(h.lease, h.amount, spent)
            if done is not None:
                due.append(done)
            if not here:  # its lease went back counting it at its reservation: the difference
                unheld.append(Settlement(h.key, 0.0, spent - h.amount, h.ttl))
        batch = [(reservation.id, direct)] if direct else []
        if unheld:
            batch.append((None, unheld))
        self._apply(batch + [_returned(lease) for lease in due])

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back: the call failed and cost nothing."""
        self.settle(reservation, ZERO)

    def _return(self, leases: list[Lease]) -> None:
        if leases:
            self._apply([_returned(lease) for lease in leases])

    def _apply(self, settlements: list[tuple[str | None, list[Settlement]]], now: bool = False) -> None:
        with self._lock:
            self._backlog.extend(settlements)
            if self.write_behind and not now:
                return
            while self._backlog:
                batch = list(islice(self._backlog, WRITE_BATCH))
                try:
                    self.store.settle_many(batch)
                except StoreUnavailable:
                    return  # kept for the next call; the store logged the outage
                for _ in batch:
                    self._backlog.popleft()

    def flush(self) -> None:
        """Write the settlements held back: by an outage, or to go out together (called
        periodically), with the leases that fell idle."""
        self._return(self.leases.expire(self.clock()))
        self._apply([], now=True)

    def retire(self) -> None:
        """Every lease goes back (the process is stopping): written with the next `flush`."""
        self._return(self.leases.close_all())

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def pending(self) -> list[dict]:
        """The settlements the store has not taken, as JSON (kept across a restart by `spill`)."""
        with self._lock:
            return [{"hold": hold, "changes": [asdict(c) for c in changes]} for hold, changes in self._backlog]

    def restore(self, pending: list[dict]) -> None:
        with self._lock:
            self._backlog.extend((p["hold"], [Settlement(**c) for c in p["changes"]]) for p in pending)


def _returned(lease: Lease) -> tuple[str, list[Settlement]]:
    """A lease going back: its grant turns into what was drawn on it."""
    return lease.hold, [Settlement(lease.key, lease.granted, lease.drawn, lease.ttl)]


def _refusal(model: str | None, asks: list[Ask], owners: list, refused: int, total: float) -> Admission:
    budget, unit, span, scope = owners[refused]
    limit = asks[refused].limit
    assert limit is not None  # only an ask with a limit is refused
    return Admission(
        model,
        rejected=Exceeded(budget, unit, limit, total, span.reset_at),
        standing=[_standing(budget, unit, limit, total, scope, span)],
    )


def _admitted(
    model: str | None,
    hold: str | None,
    asks: list[Ask],
    owners: list,
    totals: list[float],
    over: list[bool],
    leased: dict[int, Lease] | None = None,
) -> Admission:
    admission = Admission(model, reservation=Reservation(hold, _holds(asks, owners, reserved=True, leased=leased)))
    closest = 2.0
    for ask, (budget, unit, span, scope), total, beyond in zip(asks, owners, totals, over):
        if beyond and budget.name not in admission.warnings:
            admission.warnings.append(budget.name)
        if ask.limit is None:
            continue
        admission.standing.append(_standing(budget, unit, ask.limit, total, scope, span))
        share = (ask.limit - total) / ask.limit
        if share < closest:
            closest, admission.tightest = share, (budget.name, unit, ask.limit - total)
    return admission
