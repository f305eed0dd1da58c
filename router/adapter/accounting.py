"""Spend accounting on LiteLLM's request lifecycle: budgets admitted before the call, settled to
the policy's price of the real usage after it, released when it fails; one ledger record each.

The decision dict in the request metadata carries what the later steps need (reservation, identity,
reasoning cap), and a `settled` mark makes settlement happen once however many events arrive.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping

from router.adapter import common
from router.budgets import BudgetBook, Exceeded, Reservation
from router.core.budgets import ZERO, Amounts, spent
from router.core.decide import CompiledPolicy, Decision
from router.core.pricing import token_counts
from router.core.request import Identity
from router.ledger import Ledger
from router.policy.reload import PolicyFile

log = logging.getLogger("router")
_EFFORT = ((1024, "low"), (8192, "medium"))  # reasoning cap (tokens) -> reasoning_effort, "high" above


class BudgetExceeded(Exception):
    def __init__(self, exceeded: Exceeded):
        self.exceeded = exceeded
        super().__init__(exceeded.message())


class Accounting:
    def __init__(self, policy: PolicyFile, book: BudgetBook, ledger: Ledger):
        self.policy = policy
        self.book = book
        self.ledger = ledger

    # -- before the call ---------------------------------------------------------------------------

    def admit(self, decision: Decision, identity: Identity) -> tuple[Decision, dict]:
        """Reserve the budgets that apply; the decision to serve (downgraded when a budget says so) and
        what to remember about it. Raises BudgetExceeded for a request a budget rejects."""
        compiled = self.policy.current
        notes: dict = {"identity": dataclasses.asdict(identity)}
        if not compiled.policy.budgets:
            return decision, notes
        admission = self.book.admit(compiled, decision.route, decision.model, identity, identity.tags,
                                    decision.prompt_tokens, decision.max_output_tokens or None, answers=decision.answers)
        if admission.rejected is not None:
            raise BudgetExceeded(admission.rejected)
        if admission.downgraded_from is not None:
            decision = _downgrade(compiled, decision, admission.model)
            notes["downgraded_from"] = admission.downgraded_from
        notes["reservation"] = admission.reservation.to_dict()
        if admission.tightest:
            notes["budget"] = dict(zip(("name", "unit", "remaining"), admission.tightest))
        if admission.warnings:
            notes["budget_warnings"] = admission.warnings
        return decision, notes

    def reasoning_controls(self, decision: Decision, request: dict, recorded: dict) -> None:
        """Pass the route's reasoning cap to the provider the way its model understands."""
        compiled = self.policy.current
        route = compiled.route_by_name.get(decision.route)
        if route is None or route.reasoning is None or decision.model is None:
            return
        cap = route.reasoning.max_tokens
        recorded["reasoning_cap"] = cap
        control = compiled.spec(decision.model).reasoning_control
        if control == "effort" and "reasoning_effort" not in request:
            request["reasoning_effort"] = next((effort for limit, effort in _EFFORT if cap <= limit), "high")
        elif control == "budget" and "thinking" not in request:
            request["thinking"] = {"type": "enabled", "budget_tokens": cap}

    # -- after the call ----------------------------------------------------------------------------

    def on_logged_success(self, kwargs: Mapping, response_obj, start_time, end_time) -> None:
        """A LiteLLM success event: settle and record the request it belongs to (once)."""
        decision = _decision_in(kwargs)
        if decision is None:
            return  # not routed by us (or the SDK's outer `policy/auto` call)
        standard = kwargs.get("standard_logging_object") or {}
        served = standard.get("model_group") or kwargs.get("model")
        self.on_success(decision, _as_dict(response_obj), served, bool(standard.get("cache_hit") or kwargs.get("cache_hit")),
                        standard.get("response_cost"), (end_time - start_time).total_seconds())

    def on_success(self, decision: dict | None, response: Mapping, served: str | None, cache_hit: bool,
                   litellm_cost: float | None, latency: float) -> None:
        if decision is None or decision.get("settled"):
            return
        decision["settled"] = True
        compiled = self.policy.current
        # The model that answered (a fallback may have); a group the policy does not list has no price.
        model = compiled.model_serving(served) if served else compiled.resolve(decision.get("model") or "")
        usage = dict(response.get("usage") or {})
        reasoning_text = common.reasoning_text(response)
        actual = ZERO if cache_hit else _actual(compiled, model, usage, reasoning_text, litellm_cost)
        self.book.settle(Reservation.from_dict(decision.get("reservation")), actual)
        if model is not None and not cache_hit:
            answer = token_counts(usage, reasoning_text).completion // max(1, decision.get("answers", 1))
            self.book.outputs.observe(decision["route"], model, answer)
        record = self._record(decision, "ok", latency, served, model)
        record.update(cost_usd=actual.usd, litellm_cost_usd=litellm_cost, cache=decision.get("cache", "off"),
                      tokens=_tokens(usage, reasoning_text), priced_by="policy" if model else "litellm")
        if cache_hit and model:
            record["saved_usd"] = spent(compiled.spec(model).price, usage, reasoning_text).usd
        cap = decision.get("reasoning_cap")
        if cap and record["tokens"]["reasoning"] > cap:
            record["reasoning_over_cap"] = True
            log.warning("route %s: %d reasoning tokens, over its cap of %d", decision["route"], record["tokens"]["reasoning"], cap)
        self.ledger.write(record)

    def on_failure(self, decision: dict | None, outcome: str = "error") -> None:
        if decision is None or decision.get("settled"):
            return
        decision["settled"] = True
        self.book.release(Reservation.from_dict(decision.get("reservation")))
        self.ledger.write(self._record(decision, outcome, None, None, None))

    def rejected(self, decision: Decision, identity: Identity, exceeded: Exceeded) -> None:
        record = self._record({**decision.as_dict(), "identity": dataclasses.asdict(identity)}, "budget_rejected",
                              None, None, None)
        record["budget"] = exceeded.budget.name
        self.ledger.write(record)

    @staticmethod
    def _record(decision: Mapping, outcome: str, latency: float | None, served: str | None, model: str | None) -> dict:
        identity = decision.get("identity") or {}
        return {
            "t": time.time(), "outcome": outcome, "route": decision.get("route"),
            "model": model or decision.get("model"), "target": decision.get("target"), "served": served,
            "key": identity.get("key_hash"), "team": identity.get("team"), "user": identity.get("user"),
            "tags": list(identity.get("tags") or []),
            "latency_ms": None if latency is None else round(latency * 1000, 1),
            "downgraded_from": decision.get("downgraded_from"),
        }


def _downgrade(compiled: CompiledPolicy, decision: Decision, model: str) -> Decision:
    reason = f"budget exhausted for '{decision.model}': downgraded to '{model}'"
    return dataclasses.replace(decision, model=model, target=compiled.spec(model).target, fallbacks=(),
                               reasons=decision.reasons + (reason,))


def _actual(compiled: CompiledPolicy, model: str | None, usage: dict, reasoning_text: str | None,
            litellm_cost: float | None) -> Amounts:
    """Spend at the policy's prices; at LiteLLM's for a group the policy does not price."""
    if model is not None:
        return spent(compiled.spec(model).price, usage, reasoning_text)
    t = token_counts(usage, reasoning_text)
    return Amounts(float(litellm_cost or 0.0), float(t.prompt + t.completion), float(t.reasoning))


def _tokens(usage: Mapping, reasoning_text: str | None) -> dict:
    t = token_counts(usage, reasoning_text)
    return {"prompt": t.prompt, "cached": t.cached, "completion": t.completion, "reasoning": t.reasoning,
            "reasoning_counted": t.reasoning_counted}


def _decision_in(kwargs: Mapping) -> dict | None:
    params = kwargs.get("litellm_params") or {}
    for holder in (params.get("metadata"), params.get("litellm_metadata"), kwargs.get("metadata")):
        if isinstance(holder, dict) and isinstance(holder.get("router"), dict):
            return holder["router"]
    return None


def _as_dict(response) -> dict:
    if isinstance(response, Mapping):
        return dict(response)
    dump = getattr(response, "model_dump", None)
    return dump() if callable(dump) else {}
