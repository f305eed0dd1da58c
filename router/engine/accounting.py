"""Spend accounting over a request's life: budgets admitted before the call, settled to the policy's
price of the real usage after it, released when it fails; one ledger record each.

The request's record (router.engine.record) carries what the later steps need (reservation,
identity, reasoning cap), and its `settled` mark makes settlement happen once however many events
arrive.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from router.core.budgets import ZERO, Amounts, spent
from router.core.decide import CompiledPolicy, Decision
from router.core.pricing import TokenCounts, token_counts
from router.core.pricing import reasoning_text as reasoning_of
from router.core.request import Identity
from router.engine.budget_book import BudgetBook
from router.engine.ledger import CAPTURED, Ledger
from router.engine.policy_file import PolicyFile
from router.engine.record import BudgetNote, DecisionRecord, new_record
from router.engine.reservation import Exceeded, Reservation
from router.policy.crossref import EXPLICIT_ROUTE

if TYPE_CHECKING:
    from router.engine.metrics import Metrics
    from router.engine.webhooks import Notifier

log = logging.getLogger("router")


class BudgetExceeded(Exception):
    def __init__(self, exceeded: Exceeded):
        self.exceeded = exceeded
        super().__init__(exceeded.message())


class Accounting:
    def __init__(
        self,
        policy: PolicyFile,
        book: BudgetBook,
        ledger: Ledger,
        metrics: Metrics | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.policy = policy
        self.clock = clock  # the records' times and the budgets' windows
        self.book = book
        self.ledger = ledger
        self.metrics = metrics
        self.notifier = notifier  # webhook alerts of budgets passing their thresholds

    # -- before the call ---------------------------------------------------------------------------

    def admit(self, decision: Decision, identity: Identity) -> tuple[Decision, DecisionRecord]:
        """Reserve the budgets that apply; the decision to serve (downgraded when a budget says so) and
        its record. Raises BudgetExceeded for a request a budget rejects."""
        compiled = self.policy.current
        if not compiled.policy.budgets:
            return decision, new_record(decision, identity)
        admission = self.book.admit(
            compiled,
            decision.route,
            decision.model,
            identity,
            identity.tags,
            decision.prompt_tokens,
            decision.max_output_tokens or None,
            answers=decision.answers,
            eligible=decision.eligible,
            now=self.clock(),
        )
        if admission.standing:
            if self.metrics is not None:
                self.metrics.standing(admission.standing)
            if self.notifier is not None:
                self.notifier.budget(admission.standing)
        if admission.rejected is not None:
            raise BudgetExceeded(admission.rejected)
        downgraded_from = admission.downgraded_from
        if downgraded_from is not None and admission.model is not None:
            decision = _downgrade(compiled, decision, admission.model)
        record = new_record(decision, identity)
        if downgraded_from is not None:
            record["downgraded_from"] = downgraded_from
            record["downgraded_by"] = admission.downgraded_by or ""
        record["reservation"] = admission.reservation.to_dict()
        if admission.tightest:
            name, unit, remaining = admission.tightest
            record["budget"] = BudgetNote(name=name, unit=unit, remaining=remaining)
        if admission.warnings:
            record["budget_warnings"] = admission.warnings
        return decision, record

    # -- after the call ----------------------------------------------------------------------------

    def on_success(
        self,
        decision: DecisionRecord | None,
        response: Mapping,
        served: str | None,
        cache_hit: bool,
        litellm_cost: float | None,
        latency: float,
    ) -> None:
        """A call answered (`served`: the model group that did): settle and record it, once."""
        if decision is not None and self.claim(decision):
            self.succeeded(decision, response, served, cache_hit, litellm_cost, latency)

    def claim(self, decision: DecisionRecord) -> bool:
        """Mark the request settled; False when an earlier event did. The proxy claims a success
        at once and has it `succeeded` later, off the event loop."""
        if decision.get("settled"):
            return False
        decision["settled"] = True
        return True

    def succeeded(
        self,
        decision: DecisionRecord,
        response: Mapping,
        served: str | None,
        cache_hit: bool,
        litellm_cost: float | None,
        latency: float,
        at: float | None = None,
    ) -> None:
        """Settle and record a claimed success; `at`: when it ended (now, unless told)."""
        compiled = self.policy.current
        # The model that answered (a fallback may have); a group the policy does not list has no price.
        model = compiled.model_serving(served) if served else compiled.resolve(decision.get("model") or "")
        counts = token_counts(response.get("usage"), reasoning_of(response))
        actual = ZERO if cache_hit else _actual(compiled, model, counts, litellm_cost)
        reservation = Reservation.from_dict(decision.get("reservation"))
        self.book.settle(reservation, actual)
        if model is not None and not cache_hit:
            answer = counts.completion // max(1, decision.get("answers", 1))
            self.book.outputs.observe(decision["route"], model, answer)
        record = self._record(decision, "ok", latency, served, model, at)
        record.update(
            cost_usd=actual.usd,
            litellm_cost_usd=litellm_cost,
            cache=decision.get("cache", "off"),
            tokens=_tokens(counts),
            priced_by="policy" if model else "litellm",
        )
        if cache_hit and model:
            record["saved_usd"] = spent(compiled.spec(model).price, counts).usd
        if reservation.holds:
            record["budgets"] = reservation.counted(actual)
        cap = decision.get("reasoning_cap")
        if cap and record["tokens"]["reasoning"] > cap:
            record["reasoning_over_cap"] = True
            log.warning(
                "route %s: %d reasoning tokens, over its cap of %d",
                decision["route"],
                record["tokens"]["reasoning"],
                cap,
            )
        self.ledger.write(record)

    def on_failure(self, decision: DecisionRecord | None, outcome: str = "error") -> None:
        if decision is None or decision.get("settled"):
            return
        decision["settled"] = True
        self.book.release(Reservation.from_dict(decision.get("reservation")))
        self.ledger.write(self._record(decision, outcome, None, None, None))

    def rejected(
        self, decision: Decision, identity: Identity, exceeded: Exceeded, captured: dict | None = None
    ) -> None:
        refused = new_record(decision, identity)
        if captured is not None:
            refused["capture"] = captured
        record = self._record(refused, "budget_rejected", None, None, None)
        record["budget"] = exceeded.budget.name
        self.ledger.write(record)

    def _record(
        self,
        decision: DecisionRecord,
        outcome: str,
        latency: float | None,
        served: str | None,
        model: str | None,
        at: float | None = None,
    ) -> dict:
        identity = decision.get("identity") or {}
        record = {
            "t": self.clock() if at is None else at,
            "outcome": outcome,
            "route": decision.get("route"),
            "model": model or decision.get("model"),
            "target": decision.get("target"),
            "served": served,
            "key": identity.get("key_hash"),
            "team": identity.get("team"),
            "user": identity.get("user"),
            "tags": list(identity.get("tags") or []),
            "latency_ms": None if latency is None else round(latency * 1000, 1),
            "downgraded_from": decision.get("downgraded_from"),
            "decided_by": _decided_by(decision),
        }
        if "capture" in decision:  # what a replay needs: the request and who sent it (router.engine.capture)
            record[CAPTURED] = decision["capture"]
        return record


def _decided_by(decision: DecisionRecord) -> str:
    """What chose the model: the request naming it, the conversation's first turn, a shift, a
    budget's downgrade, or the route the policy matched."""
    if decision.get("downgraded_from"):
        return "downgrade"
    if decision.get("shifted_from"):
        return "shift"
    if decision.get("affinity") == "kept":
        return "affinity"
    return "explicit" if decision.get("route") == EXPLICIT_ROUTE else "route"


def _downgrade(compiled: CompiledPolicy, decision: Decision, model: str) -> Decision:
    reason = f"budget exhausted for '{decision.model}': downgraded to '{model}'"
    return dataclasses.replace(
        decision, model=model, target=compiled.spec(model).target, fallbacks=(), reasons=decision.reasons + (reason,)
    )


def _actual(compiled: CompiledPolicy, model: str | None, t: TokenCounts, litellm_cost: float | None) -> Amounts:
    """Spend at the policy's prices; at LiteLLM's for a group the policy does not price."""
    if model is not None:
        return spent(compiled.spec(model).price, t)
    return Amounts(float(litellm_cost or 0.0), float(t.prompt + t.completion), float(t.reasoning))


def _tokens(t: TokenCounts) -> dict:
    return {
        "prompt": t.prompt,
        "cached": t.cached,
        "completion": t.completion,
        "reasoning": t.reasoning,
        "reasoning_counted": t.reasoning_counted,
    }
