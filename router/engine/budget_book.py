"""Budgets over the state store: reserve a request's worst case before the call, settle to its real
cost after, release on failure. Reservations are atomic in the store (a SQLite transaction, a Redis
Lua script), so concurrent requests on any number of instances cannot slip past a limit together.
The store records each reservation, and settles it in one step: a store that lost its data (a
Redis restarted empty) has no record, and gets the real cost added, not a delta that would drive
its counters below zero and open the budget.

When the store is unreachable, requests are admitted unchecked rather than refused, and their
spend is kept in a backlog that is written as soon as the store answers again: spend is never lost.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from zoneinfo import ZoneInfo

from router.core.budgets import ZERO, Amounts, Span, Spans, applies, limits, output_estimate, scopes, worst_case
from router.core.decide import CompiledPolicy
from router.core.eligibility import ANYONE, Eligibility
from router.core.request import Identity
from router.policy.schema import Budget
from router.state.protocol import WRITE_BATCH, Ask, Reserved, Settlement, StateStore, StoreUnavailable

log = logging.getLogger("router")


@dataclass(frozen=True)
class Hold:
    key: str
    unit: str
    amount: float  # what was reserved; 0 when the store was down and nothing could be
    ttl: float
    budget: str = ""  # the budget and scope whose counter it is (records spilled by older versions lack them)
    scope: str = ""


@dataclass(frozen=True)
class Reservation:
    """What one admission reserved: the store's record of it (`id`) and each counter's amount."""

    id: str | None = None  # None when nothing was recorded (the store was down, or no budget applies)
    holds: tuple[Hold, ...] = ()

    def to_dict(self) -> dict:
        # vars(), not dataclasses.asdict: the fields are flat, and asdict's deep copy cost ~30 us a request.
        return {"id": self.id, "holds": [dict(vars(h)) for h in self.holds]}

    def counted(self, actual: Amounts) -> list[list]:
        """[budget, scope, usd, tokens, reasoning] for each budget scope the reservation drew on,
        what its settlement adds there: the ledger record's `budgets`, which `report` sums."""
        scopes = dict.fromkeys((h.budget, h.scope) for h in self.holds if h.budget)
        return [[budget, scope, actual.usd, actual.tokens, actual.reasoning] for budget, scope in scopes]

    @classmethod
    def from_dict(cls, data: dict | None) -> Reservation:
        data = data or {}
        return cls(data.get("id"), tuple(Hold(**h) for h in data.get("holds", ())))


@dataclass(frozen=True)
class Exceeded:
    budget: Budget
    unit: str
    limit: float
    spent: float
    reset_at: float

    def message(self) -> str:
        unit = "USD" if self.unit == "usd" else f"{self.unit} tokens" if self.unit == "reasoning" else "tokens"
        when = datetime.fromtimestamp(self.reset_at, UTC).isoformat(timespec="seconds")
        return (
            f"budget '{self.budget.name}' ({self.budget.per}, {self.budget.window}) is exhausted: "
            f"{self.spent:.6g} of {self.limit:.6g} {unit} spent; it frees up at {when}"
        )

    def details(self) -> dict:
        return {
            "budget": self.budget.name,
            "per": self.budget.per,
            "window": self.budget.window,
            "unit": self.unit,
            "limit": self.limit,
            "spent": round(self.spent, 9),
            "reset_at": self.reset_at,
        }


# (budget, unit, limit, total, scope, period, ttl): a counter's total after a reservation, the window
# it counts (its calendar bucket, or the rolling window), and how long that window lasts.
Standing = tuple[str, str, float, float, str, str, float]


def _standing(budget: Budget, unit: str, limit: float, total: float, scope: str, span: Span) -> Standing:
    if budget.window.startswith("rolling "):
        return budget.name, unit, limit, total, scope, budget.window, float(budget.window.split()[1])
    return budget.name, unit, limit, total, scope, span.buckets[-1], span.ttl


def _holds(asks: list[Ask], owners: list, reserved: bool) -> tuple[Hold, ...]:
    """Each ask's counter with what it added (nothing when the store could not be reached)."""
    return tuple(
        Hold(ask.keys[-1], unit, ask.amount if reserved else 0.0, ask.ttl, budget.name, scope)
        for ask, (budget, unit, _, scope) in zip(asks, owners)
    )


@dataclass
class Admission:
    model: str | None  # the policy model that will serve: the decision's, or a downgrade
    reservation: Reservation = Reservation()
    warnings: list[str] = field(default_factory=list)  # budgets over their limit that only warn
    downgraded_from: str | None = None
    downgraded_by: str | None = None  # the budget that did
    rejected: Exceeded | None = None
    tightest: tuple[str, str, float] | None = None  # (budget, unit, remaining) closest to its limit
    standing: list[Standing] = field(default_factory=list)  # every limited counter, after this reservation
    unchecked: bool = False  # the store was down: admitted without a check


class OutputHistory:
    """Each route and model's recent output sizes (tokens, reasoning included), on this instance:
    what a budget reserves for the next request, once there are enough of them."""

    KEEP = 200
    MIN_SAMPLES = 20

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], deque[int]] = {}
        self._estimates: dict[tuple[str, str, str], int] = {}  # dropped when a new output arrives

    def observe(self, route: str, model: str, tokens: int) -> None:
        self._seen.setdefault((route, model), deque(maxlen=self.KEEP)).append(tokens)
        for how in ("mean", "p90", "p95", "p99"):
            self._estimates.pop((route, model, how), None)

    def estimate(self, route: str, model: str, how: str) -> int | None:
        """None until MIN_SAMPLES outputs were seen."""
        key = (route, model, how)
        found = self._estimates.get(key)
        if found is None:
            seen = self._seen.get((route, model))
            if seen is None or len(seen) < self.MIN_SAMPLES:
                return None
            found = self._estimates[key] = output_estimate(list(seen), how)
        return found


class BudgetBook:
    def __init__(self, store: StateStore, write_behind: bool = False):
        self.store = store
        self.write_behind = write_behind  # settlements wait for `flush`, which writes them in one step
        self.outputs = OutputHistory()
        self._spans = Spans()
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
        tz = ZoneInfo(compiled.settings.timezone)
        asks, owners = [], []
        for budget in compiled.policy.budgets:
            if not applies(budget, route, model):
                continue
            span = self._spans.of(budget.window, now, tz)
            for scope in scopes(budget, identity, route, model, tags):
                for unit, limit in limits(budget):
                    keys = tuple(f"budget:{budget.name}:{unit}:{scope}:{b}" for b in span.buckets)
                    asks.append(Ask(keys, estimate.of(unit), limit, span.ttl, soft=budget.on_exceed == "warn"))
                    owners.append((budget, unit, span, scope))
        if not asks:
            return Admission(model)
        hold = uuid.uuid4().hex
        try:
            reserved = self.store.reserve(asks, hold)
        except StoreUnavailable:  # admit unchecked; the settlement still finds the counters
            return Admission(model, reservation=Reservation(None, _holds(asks, owners, reserved=False)), unchecked=True)
        if reserved.refused is not None:
            budget, unit, span, scope = owners[reserved.refused]
            ask = asks[reserved.refused]
            assert ask.limit is not None  # only an ask with a limit is refused
            total = reserved.totals[reserved.refused]
            return Admission(
                model,
                rejected=Exceeded(budget, unit, ask.limit, total, span.reset_at),
                standing=[_standing(budget, unit, ask.limit, total, scope, span)],
            )
        return self._admitted(model, hold, asks, owners, reserved)

    @staticmethod
    def _admitted(model: str, hold: str, asks: list[Ask], owners: list, reserved: Reserved) -> Admission:
        admission = Admission(model, reservation=Reservation(hold, _holds(asks, owners, reserved=True)))
        closest = 2.0
        for ask, (budget, unit, span, scope), total, over in zip(asks, owners, reserved.totals, reserved.over):
            if over and budget.name not in admission.warnings:
                admission.warnings.append(budget.name)
            if ask.limit is None:
                continue
            admission.standing.append(_standing(budget, unit, ask.limit, total, scope, span))
            share = (ask.limit - total) / ask.limit
            if share < closest:
                closest, admission.tightest = share, (budget.name, unit, ask.limit - total)
        return admission

    def settle(self, reservation: Reservation, actual: Amounts) -> None:
        """Turn a reservation into the real spend: at once, or with the next `flush` when the book
        writes behind (until then the reservation's worst case still counts: a limit holds)."""
        if reservation.holds:
            self._apply(
                (reservation.id, [Settlement(h.key, h.amount, actual.of(h.unit), h.ttl) for h in reservation.holds])
            )

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back: the call failed and cost nothing."""
        self.settle(reservation, ZERO)

    def _apply(self, settlement: tuple[str | None, list[Settlement]] | None) -> None:
        with self._lock:
            if settlement is not None:
                self._backlog.append(settlement)
                if self.write_behind:
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
        """Write the settlements held back: by an outage, or to go out together (called periodically)."""
        self._apply(None)

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
