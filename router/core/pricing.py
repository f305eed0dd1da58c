"""What a response cost at the policy's prices: input, cached input, output and reasoning tokens apart."""

from __future__ import annotations

from collections.abc import Mapping

from router.policy.schema import Price

_PER_TOKEN = 1e-6  # prices are per million tokens


def _detail(usage: Mapping, field: str, key: str) -> int:
    details = usage.get(field)
    return int((details or {}).get(key) or 0) if isinstance(details, Mapping) else 0


def cost_usd(price: Price, usage: Mapping) -> float:
    """Reasoning tokens are part of completion tokens and cached tokens part of prompt tokens;
    each is priced at its own rate (falling back to output and input) and the rest at the base rate."""
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = min(_detail(usage, "prompt_tokens_details", "cached_tokens"), prompt)
    reasoning = min(_detail(usage, "completion_tokens_details", "reasoning_tokens"), completion)
    cached_price = price.input if price.cached_input is None else price.cached_input
    reasoning_price = price.output if price.reasoning is None else price.reasoning
    return _PER_TOKEN * (
        (prompt - cached) * price.input
        + cached * cached_price
        + (completion - reasoning) * price.output
        + reasoning * reasoning_price
    )
