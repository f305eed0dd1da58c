"""What a response cost at the policy's prices: input, cached input, output and reasoning tokens apart."""

from __future__ import annotations

from dataclasses import dataclass

from router.core.params import MAPPING
from router.core.request import estimate_tokens
from router.policy.schema import Price

_PER_TOKEN = 1e-6  # prices are per million tokens
_ABSENT = object()


@dataclass(frozen=True)
class TokenCounts:
    prompt: int  # all input tokens, cached ones included
    cached: int
    completion: int  # all output tokens, reasoning ones included
    reasoning: int
    reasoning_counted: bool = False  # True when counted from reasoning text, the provider gave no figure


def _count(usage: object, field: str, key: str | None = None) -> int:
    value = _field(usage, field)
    if key is not None:
        value = _field(value, key)
    return int(value) if isinstance(value, int | float) else 0


def token_counts(usage: object, reasoning_text: str | None = None) -> TokenCounts:
    """Tokens by kind, from a usage mapping or object (read field by field: dumping a response's
    usage model costs more than the whole count). Reasoning comes from
    `completion_tokens_details.reasoning_tokens`; a provider that omits it but returns
    `reasoning_content` gets that text counted instead."""
    prompt = _count(usage, "prompt_tokens")
    completion = _count(usage, "completion_tokens")
    cached = min(_count(usage, "prompt_tokens_details", "cached_tokens"), prompt)
    reasoning = _count(usage, "completion_tokens_details", "reasoning_tokens")
    counted = False
    if not reasoning and reasoning_text:
        reasoning, counted = estimate_tokens(reasoning_text), True
    return TokenCounts(prompt, cached, completion, min(reasoning, completion), counted)


def cost_usd(price: Price, usage: object, reasoning_text: str | None = None) -> float:
    return priced(price, token_counts(usage, reasoning_text))


def priced(price: Price, t: TokenCounts) -> float:
    """Reasoning tokens are part of completion tokens and cached tokens part of prompt tokens;
    each is priced at its own rate (falling back to output and input) and the rest at the base rate."""
    cached_price = price.input if price.cached_input is None else price.cached_input
    reasoning_price = price.output if price.reasoning is None else price.reasoning
    return _PER_TOKEN * (
        (t.prompt - t.cached) * price.input
        + t.cached * cached_price
        + (t.completion - t.reasoning) * price.output
        + t.reasoning * reasoning_price
    )


def reasoning_text(response: object) -> str | None:
    """The first choice's reasoning text, from a LiteLLM response object or its dict form."""
    choices = _field(response, "choices")
    first = choices[0] if isinstance(choices, (list, tuple)) and choices else None
    message = _field(first, "message") or _field(first, "delta")
    text = _field(message, "reasoning_content") or _field(
        _field(message, "provider_specific_fields"), "reasoning_content"
    )
    return text if isinstance(text, str) and text else None


def _field(item: object, name: str) -> object:
    """`item[name]` of a dict, else `item.name`: LiteLLM's responses are objects, and asking
    whether an object is a Mapping runs the ABC machinery (16 times for one answer's headers and
    accounting). No field read here is a mapping method's name."""
    if item is None:
        return None
    if isinstance(item, dict):
        return item.get(name)
    value = getattr(item, name, _ABSENT)
    if value is not _ABSENT:
        return value
    return item.get(name) if isinstance(item, MAPPING) else None
