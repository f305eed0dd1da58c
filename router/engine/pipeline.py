"""The request pipeline, once for the proxy and the SDK: route a request, move it off held or shifted
models, admit it against the budgets, look it up in the response cache when the policy lets it use
one, and say what its call needs (attempt parameters, reasoning controls). Also the second call an answer cut off by its
model's limit gets on the route's larger model. The adapters turn an `Admitted` into LiteLLM's shapes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from router.cache.keys import answer_params, skips_lookup
from router.cache.rules import RuleBook
from router.cache.service import CacheRequest, ResponseCache
from router.core.decide import CompiledPolicy, Decision, route_body
from router.core.eligibility import eligibility
from router.core.request import Identity
from router.engine.accounting import Accounting, BudgetExceeded
from router.engine.affinity import Conversations
from router.engine.capture import captured
from router.engine.health import Health
from router.engine.metrics import Metrics
from router.engine.policy_file import PolicyFile
from router.engine.record import DecisionRecord, identity_of, new_record
from router.engine.reservation import Exceeded
from router.errors import RequestRejected

log = logging.getLogger("router")
_EFFORT = ((1024, "low"), (8192, "medium"))  # reasoning cap (tokens) -> reasoning_effort, "high" above


@dataclass(frozen=True)
class Admitted:
    """A request the pipeline lets through, and what its call to the chosen model needs."""

    decision: Decision
    record: DecisionRecord  # rides with the request; the later steps read and mark it
    attempt: dict[str, object]  # for LiteLLM's Router: timeout, num_retries, model_group_retry_policy
    controls: dict[str, object]  # model parameters the route adds: reasoning_effort or thinking
    cacheable: bool  # the policy lets the request use the response cache (the record says what it found)


class Refused(RequestRejected):
    """Refused after routing: `record` is the decision it was refused at, so the answer can still
    say which route and model it was for; `exceeded` is the budget that refused it, if one did."""

    def __init__(
        self,
        status: int,
        message: str,
        record: DecisionRecord,
        retry_after: float | None = None,
        exceeded: Exceeded | None = None,
    ):
        super().__init__(status, message, retry_after)
        self.record = record
        self.exceeded = exceeded


class Pipeline:
    def __init__(
        self,
        policy: PolicyFile,
        health: Health,
        accounting: Accounting,
        cache: ResponseCache | None,
        conversations: Conversations,
        metrics: Metrics | None = None,
    ):
        self.policy = policy
        self.metrics = metrics
        self.health = health
        self.accounting = accounting
        self.conversations = conversations
        self.cache = cache  # None: no response cache
        self.cache_rules = RuleBook() if cache is not None else None

    def prepare(self, body: Mapping, identity: Identity, shape_checked: bool = False) -> Admitted:
        """Raises RequestRejected for a request the policy will not serve (Refused once it was routed).
        `shape_checked`: the body's size and nesting were checked against the policy's limits already."""
        compiled = self.policy.current  # one policy for the whole decision, even mid-reload
        began = time.perf_counter()
        decision = route_body(compiled, body, identity, shape_checked)
        decision, affinity = self.conversations.steer(compiled, body, identity, decision)
        try:
            decision = self.health.reroute(decision)
        except RequestRejected as exc:  # its model is held and it has no other
            raise _refused(decision, identity, exc) from None
        if self.metrics is not None:
            self.metrics.decided(time.perf_counter() - began)
        kept = _captured(compiled, body, identity)
        try:
            decision, record = self.accounting.admit(decision, identity)
        except BudgetExceeded as exc:
            self.accounting.rejected(decision, identity, exc.exceeded, kept)
            wait = exc.exceeded.reset_at - self.accounting.clock()
            raise _refused(decision, identity, RequestRejected(429, str(exc), wait), exc.exceeded) from None
        if affinity is not None:
            record["affinity"] = affinity
        if kept is not None:
            record["capture"] = kept
        return self._admitted(compiled, decision, record, body, identity)

    def truncated(
        self, record: DecisionRecord, body: Mapping, finish_reason: object, produced: int, served: str | None
    ) -> Decision | None:
        """The decision to ask the route's larger model again, when the answer was cut off by the
        model's limit rather than the client's own max_tokens; None when there is nothing to retry
        on. Pure and cheap: it runs for every answer (`admit_retry` then reserves its budget)."""
        return _truncation_retry(self.policy.current, record, body, finish_reason, produced, served)

    def admit_retry(
        self, record: DecisionRecord, decision: Decision, body: Mapping, served: str | None
    ) -> Admitted | None:
        """The retry `truncated` decided, admitted on its own; None when its budget says no (the
        truncated answer is still an answer)."""
        try:
            decision, retry = self.accounting.admit(decision, identity_of(record))
        except BudgetExceeded:
            return None
        retry["truncated_on"] = served or record["target"]
        return self._admitted(self.policy.current, decision, retry, body, identity_of(record))

    def _admitted(
        self, compiled: CompiledPolicy, decision: Decision, record: DecisionRecord, body: Mapping, identity: Identity
    ) -> Admitted:
        controls = _reasoning_controls(compiled, decision, body, record)
        cacheable = False
        if self.cache is not None and self.cache_rules is not None:
            params = answer_params({**body, **controls})
            rule = self.cache_rules.rule(compiled.policy, decision.route, params)
            messages = body.get("messages")
            if rule is not None and isinstance(messages, list):
                cacheable = True
                request = CacheRequest(f"{decision.route}:{decision.target}", identity, messages, params, rule)
                _look_up(self.cache, request, body, record)
            else:
                record["cache"] = "off"
        return Admitted(decision, record, attempt_params(compiled, decision, body), controls, cacheable)


def _captured(compiled: CompiledPolicy, body: Mapping, identity: Identity) -> dict | None:
    policy = compiled.policy
    if not policy.capture.prompts:
        return None
    sessions = policy.affinity.session_fields if policy.affinity is not None else ()
    return captured(policy.capture, body, identity, sessions)


def _look_up(cache: ResponseCache, request: CacheRequest, body: Mapping, record: DecisionRecord) -> None:
    """The cache lookup, here on the pre-call path where everything it needs is known (LiteLLM's
    own lookup, later, only fetches what the record names): the prompt is embedded once, and the
    miss's vector waits in the cache for its answer. The parameters ride with the record too: a
    store the cache no longer remembers the miss of needs them."""
    record["cache_params"] = request.params
    record["cache_key"] = key = cache.key_of(request)
    if skips_lookup(body):
        record["cache"] = "off"
        return
    try:
        hit, _ = cache.lookup(request, key)
    except Exception as exc:  # an embedding model group that fails: the request is served all the same
        log.warning("response cache: lookup failed, served as a miss: %s", exc)
        hit = None
    record["cache"] = hit.label if hit else "miss"
    if hit is not None:
        record["cache_from"] = hit.key


def attempt_params(compiled: CompiledPolicy, decision: Decision, body: Mapping) -> dict[str, object]:
    """Timeout per attempt (unless the client set one) and retries of the same model before its
    fallbacks, as the route says."""
    route = compiled.route_by_name.get(decision.route)
    settings = compiled.settings
    params: dict[str, object] = {
        "num_retries": route.retries if route is not None and route.retries is not None else settings.retries,
        # LiteLLM retries a rate-limited single-deployment group after sleeping its retry-after. Never
        # sleep on the request path: move to the next model at once, or answer 429 when there is none
        # (the group is held for the time its provider asked for).
        "model_group_retry_policy": {
            group: {"RateLimitErrorRetries": 0} for group in (decision.target, *decision.fallbacks)
        },
    }
    if "timeout" not in body:
        params["timeout"] = route.timeout if route is not None and route.timeout is not None else settings.timeout
    chain = [m for m in (decision.model, *map(compiled.model_serving, decision.fallbacks)) if m is not None]
    region = next(filter(None, (decision.eligible.region_for(compiled.spec(m)) for m in chain)), None)
    if region is not None:
        # A group with deployments in several regions: LiteLLM's Router (enable_pre_call_checks)
        # sends each attempt of the request only to deployments whose region_name is this one.
        params["allowed_model_region"] = region
    return params


def _reasoning_controls(
    compiled: CompiledPolicy, decision: Decision, body: Mapping, record: DecisionRecord
) -> dict[str, object]:
    """The route's reasoning cap, the way its model understands it (unless the client set its own)."""
    route = compiled.route_by_name.get(decision.route)
    if route is None or route.reasoning is None or decision.model is None:
        return {}
    cap = route.reasoning.max_tokens
    record["reasoning_cap"] = cap
    control = compiled.spec(decision.model).reasoning_control
    if control == "effort" and "reasoning_effort" not in body:
        return {"reasoning_effort": next((effort for limit, effort in _EFFORT if cap <= limit), "high")}
    if control == "budget" and "thinking" not in body:
        return {"thinking": {"type": "enabled", "budget_tokens": cap}}
    return {}


def _truncation_retry(
    compiled: CompiledPolicy,
    record: DecisionRecord,
    body: Mapping,
    finish_reason: object,
    produced: int,
    served: str | None,
) -> Decision | None:
    route = compiled.route_by_name.get(record["route"])
    if route is None or route.on_truncation is None or body.get("stream") or finish_reason != "length":
        return None
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    larger = compiled.resolve(route.on_truncation)
    first = served or record["target"]
    if larger is None or (isinstance(limit, int) and produced >= limit) or compiled.spec(larger).target == first:
        return None
    eligible = eligibility(compiled.access, identity_of(record), frozenset(record.get("needs", ()))).on_route(
        route.regions
    )
    if not compiled.allows(eligible, larger):
        return None  # the larger model cannot take this request, or its sender may not use it
    return Decision(
        record["route"],
        larger,
        compiled.spec(larger).target,
        (),
        (f"'{first}' cut its answer off (finish_reason length): retried on '{larger}'",),
        record["prompt_tokens"],
        record.get("max_output_tokens", 0),
        answers=record.get("answers", 1),
        eligible=eligible,
    )


def _refused(decision: Decision, identity: Identity, why: RequestRejected, exceeded: Exceeded | None = None) -> Refused:
    """Nothing was reserved for a refused request, so its record is settled from the start."""
    record = new_record(decision, identity)
    record["reasons"].append(why.message)
    record["settled"] = True
    return Refused(why.status, why.message, record, why.retry_after, exceeded)
