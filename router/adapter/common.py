"""What the proxy callback and the SDK provider share: the pipeline's verdict and record in LiteLLM's
request shapes, and the decision shown in headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from router.adapter.litellm_api import (
    CACHE_KEY,
    CACHE_OPT_IN,
    CACHING,
    LOGGED_PARAMS,
    METADATA_KEYS,
    NO_STORE,
    PER_CALL,
    RECORD_KEY,
    SERVED_GROUP_HEADER,
    STANDARD_LOG,
)
from router.core.decide import CompiledPolicy
from router.core.params import MAPPING
from router.core.pricing import cost_usd, reasoning_text
from router.engine.accounting import Accounting
from router.engine.pipeline import Admitted
from router.engine.record import DecisionRecord


def record_of(holder: Mapping) -> DecisionRecord | None:
    """The decision record of a request: in its data, the kwargs LiteLLM hands a cache or a logging
    event (under `litellm_params` there), or an SDK call."""
    for where in (holder, holder.get(LOGGED_PARAMS)):
        if not isinstance(where, MAPPING):
            continue
        for key in METADATA_KEYS:
            metadata = where.get(key)
            if isinstance(metadata, MAPPING) and isinstance(metadata.get(RECORD_KEY), dict):
                return metadata[RECORD_KEY]
    return None


def metadata_of(holder: Mapping) -> Mapping:
    """The metadata of a request, an attempt or a logging event's params: the first non-empty of
    LiteLLM's two keys, in LiteLLM's own order (`litellm_metadata` when a route uses it)."""
    for key in METADATA_KEYS:
        value = holder.get(key)
        if isinstance(value, MAPPING) and value:
            return value
    return {}


def write_record(data: dict, record: DecisionRecord) -> None:
    """Point the request at the record's model group and keep the record with it."""
    data["model"] = record["target"]
    key = metadata_key(data)
    if not isinstance(data.get(key), dict):
        data[key] = {}
    data[key][RECORD_KEY] = record


def apply_admitted(admitted: Admitted, data: dict, router: bool = True) -> None:
    """Turn the pipeline's verdict into the LiteLLM call: model, fallbacks, the route's parameters,
    and the cache opt-in. `router`: the call goes to a LiteLLM Router (the proxy's, or the SDK's
    with a model list), which takes fallbacks in their mapping form and the attempt parameters."""
    decision = admitted.decision
    write_record(data, admitted.record)
    if decision.fallbacks:
        # The Router reads only the last of a plain list of names; the mapping form keeps the order.
        data["fallbacks"] = [{decision.target: list(decision.fallbacks)}] if router else list(decision.fallbacks)
    data.update(admitted.controls)
    if router:
        data.update(admitted.attempt)
    record = admitted.record
    controls = data.get("cache")
    if controls is None or isinstance(controls, dict):
        # A copy: a retry's call shares the first call's controls. An answer the policy does not
        # cache is not offered to the store at all: LiteLLM would serialise it to JSON and start a
        # write task before our backend turned it down.
        data["cache"] = {**(controls or {}), (CACHE_OPT_IN if admitted.cacheable else NO_STORE): True}
    if admitted.cacheable:
        data[CACHE_KEY] = record["cache_key"]  # its own key would hash the whole request, twice
    if not record.get("cache_from"):
        # Nothing to serve: LiteLLM's lookup would still hash the request and inspect its
        # function's signature before it found nothing. Its store step has no such switch.
        data[CACHING] = False
    else:
        data.pop(CACHING, None)  # a retry's call copies the first's


def retry_call(call: Mapping, retry: Admitted, router: bool = True) -> dict:
    """The call again, for the retry's model, as a call of its own for LiteLLM's logging."""
    again = {
        k: (dict(v) if k in METADATA_KEYS and isinstance(v, dict) else v)  # its own record, not the first's
        for k, v in call.items()
        if k not in PER_CALL
    }
    apply_admitted(retry, again, router)
    return again


def cut_off(response: object) -> tuple[object, int]:
    """How the first choice ended, and the output tokens the answer used."""
    choices = getattr(response, "choices", None) or []
    produced = getattr(getattr(response, "usage", None), "completion_tokens", None) or 0
    return (getattr(choices[0], "finish_reason", None) if choices else None), int(produced)


def logged_success(accounting: Accounting, kwargs: Mapping, response_obj: object, start_time, end_time) -> None:
    """A LiteLLM success event: settle and record the request it belongs to (once)."""
    success = success_of(kwargs, response_obj, start_time, end_time)
    if success is not None:
        accounting.on_success(*success)


def success_of(kwargs: Mapping, response_obj: object, start_time, end_time) -> tuple | None:
    """What `Accounting.on_success` takes of a LiteLLM success event, read while LiteLLM still
    holds the event's fields as they were; None for a request not routed by us (or the SDK's
    outer `policy/auto` call)."""
    record = record_of(kwargs)
    if record is None:
        return None
    standard = kwargs.get(STANDARD_LOG) or {}
    return (
        record,
        _answered(response_obj),
        standard.get("model_group") or kwargs.get("model"),
        bool(standard.get("cache_hit") or kwargs.get("cache_hit")),
        standard.get("response_cost"),
        (end_time - start_time).total_seconds(),
    )


def metadata_key(data: Mapping) -> str:
    """Where the request keeps its metadata."""
    return next((k for k in METADATA_KEYS if isinstance(data.get(k), dict)), "metadata")


def served_group(response: object) -> str | None:
    """The model group that produced a response (a fallback's, when one answered), as LiteLLM's
    Router records it."""
    hidden = getattr(response, "_hidden_params", None) or {}
    group = (hidden.get("additional_headers") or {}).get(SERVED_GROUP_HEADER)
    return group if isinstance(group, str) and group else None


def as_served(decision: Mapping, response: object) -> Mapping:
    """The decision as the client should see it: when a fallback answered, it names that group."""
    served = served_group(response)
    if served is None or served == decision["target"]:
        return decision
    if decision.get("truncated_on"):
        return {**decision, "target": served}
    return {**decision, "target": served, "fell_back_from": decision["target"]}


def decision_headers(decision: Mapping) -> dict[str, str]:
    headers = {
        "x-router-route": _header_value(decision["route"]),
        "x-router-model": _header_value(decision["target"]),
        "x-router-reason": _header_value("; ".join(decision["reasons"])),
        "x-router-cache": decision.get("cache", "off"),
    }
    for field in ("shifted_from", "fell_back_from", "truncated_on", "affinity"):
        if decision.get(field):
            headers[f"x-router-{field.replace('_', '-')}"] = _header_value(decision[field])
    return headers


def _header_value(text: str, limit: int = 512) -> str:
    """HTTP header values must be one line of Latin-1; escape the rest and keep them short."""
    flat = " ".join(text.split())
    return flat.encode("ascii", "backslashreplace").decode("ascii")[:limit]


def response_cost_headers(compiled: CompiledPolicy, decision: Mapping, response: object) -> dict[str, str]:
    """The answer's cost at the policy's prices (when the body is already known: not for streams)
    and the budget closest to its limit."""
    headers = {}
    usage = getattr(response, "usage", None)
    model = compiled.model_serving(decision["target"]) or compiled.resolve(decision.get("model") or "")
    if decision.get("cache", "off") not in ("off", "miss"):
        headers["x-router-cost"] = "0"
    elif usage is not None and model is not None:
        headers["x-router-cost"] = f"{cost_usd(compiled.spec(model).price, usage, reasoning_text(response)):.8f}"
    budget = decision.get("budget")
    if budget:
        headers["x-router-budget-remaining"] = f"{budget['remaining']:.6f} {budget['unit']} ({budget['name']})"
    if decision.get("budget_warnings"):
        headers["x-router-budget-warning"] = _header_value("over budget: " + ", ".join(decision["budget_warnings"]))
    return headers


async def reasoning_first(stream: AsyncIterator, reasoning: str | None) -> AsyncIterator:
    """A streamed cache hit, with the stored answer's reasoning (which LiteLLM's async replay of a
    cached answer drops) as a chunk of its own before the answer."""
    async for chunk in stream:
        choices = getattr(chunk, "choices", None)
        if reasoning and choices and not getattr(choices[0].delta, "reasoning_content", None):
            lead = chunk.model_copy(deep=True)
            lead.choices[0].delta.content = None
            lead.choices[0].delta.reasoning_content = reasoning
            lead.choices[0].finish_reason = None
            yield lead
        reasoning = None
        yield chunk


def _answered(response: object) -> Mapping:
    """What accounting reads of a response: its usage and its choices (where reasoning text is).
    Not the whole response dumped: a long answer's content would be copied for nothing."""
    if isinstance(response, MAPPING):
        return response
    return {"usage": getattr(response, "usage", None), "choices": getattr(response, "choices", None)}
