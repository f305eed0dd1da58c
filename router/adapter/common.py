"""What the proxy callback and the SDK provider share: recording a decision and showing it in headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from router.core.decide import CompiledPolicy, Decision
from router.core.pricing import cost_usd

_METADATA_KEYS = ("litellm_metadata", "metadata")  # the proxy uses the first on some routes


def apply_decision(decision: Decision, data: dict) -> None:
    """Point the request at the chosen model group, with its fallbacks, and keep the decision for logs."""
    data["model"] = decision.target
    if decision.fallbacks:
        # The Router reads only the last of a plain list of names; the mapping form keeps the order.
        data["fallbacks"] = [{decision.target: list(decision.fallbacks)}]
    key = metadata_key(data)
    if not isinstance(data.get(key), dict):
        data[key] = {}
    data[key]["router"] = decision.as_dict()


def metadata_key(data: Mapping) -> str:
    """Where the request keeps its metadata: the proxy uses `litellm_metadata` on some routes."""
    return next((k for k in _METADATA_KEYS if isinstance(data.get(k), dict)), "metadata")


def decision_of(data: Mapping) -> dict | None:
    for key in _METADATA_KEYS:
        metadata = data.get(key)
        if isinstance(metadata, Mapping) and isinstance(metadata.get("router"), dict):
            return metadata["router"]
    return None


def served_group(response: object) -> str | None:
    """The model group that produced a response (a fallback's, when one answered), as LiteLLM's
    Router records it."""
    hidden = getattr(response, "_hidden_params", None) or {}
    group = (hidden.get("additional_headers") or {}).get("x-litellm-model-group")
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
    for field in ("shifted_from", "fell_back_from", "truncated_on"):
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
        usage = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
        headers["x-router-cost"] = f"{cost_usd(compiled.spec(model).price, usage, reasoning_text(response)):.8f}"
    budget = decision.get("budget")
    if budget:
        headers["x-router-budget-remaining"] = f"{budget['remaining']:.6f} {budget['unit']} ({budget['name']})"
    if decision.get("budget_warnings"):
        headers["x-router-budget-warning"] = _header_value("over budget: " + ", ".join(decision["budget_warnings"]))
    return headers


def reasoning_text(response: object) -> str | None:
    """The first choice's reasoning text, from a LiteLLM response object or its dict form."""
    choices = _field(response, "choices") or []
    message = (_field(choices[0], "message") or _field(choices[0], "delta")) if choices else None
    text = _field(message, "reasoning_content") or _field(_field(message, "provider_specific_fields"), "reasoning_content")
    return text if isinstance(text, str) and text else None


def _field(item: object, name: str) -> object:
    if item is None:
        return None
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


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
