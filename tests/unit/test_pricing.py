"""Cost at the policy's prices, each token kind apart (hand-computed figures)."""

from __future__ import annotations

import pytest

from router.core.pricing import TokenCounts, cost_usd, token_counts
from router.policy.schema import Price

PRICE = Price(input=1.0, cached_input=0.25, output=2.0, reasoning=10.0)


def test_plain_usage():
    assert cost_usd(PRICE, {"prompt_tokens": 1000, "completion_tokens": 500}) == pytest.approx(0.001 + 0.001)


def test_every_kind_apart():
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "prompt_tokens_details": {"cached_tokens": 400},
        "completion_tokens_details": {"reasoning_tokens": 300},
    }
    # 600 input at $1/M + 400 cached at $0.25/M + 200 output at $2/M + 300 reasoning at $10/M
    assert cost_usd(PRICE, usage) == pytest.approx((600 * 1 + 400 * 0.25 + 200 * 2 + 300 * 10) / 1e6)


def test_missing_prices_fall_back_to_input_and_output():
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 50,
        "completion_tokens_details": {"reasoning_tokens": 30},
        "prompt_tokens_details": {"cached_tokens": 4},
    }
    assert cost_usd(Price(input=1.0, output=2.0), usage) == pytest.approx((10 * 1 + 50 * 2) / 1e6)


def test_null_details_are_tolerated():
    assert cost_usd(PRICE, {"prompt_tokens": 1, "completion_tokens": 1, "completion_tokens_details": None}) > 0


def test_a_litellm_usage_object_is_read_field_by_field_like_its_dict():
    """The adapters hand LiteLLM's Usage objects over as they are (dumping them cost more than the count)."""
    from litellm.types.utils import Usage

    usage = Usage(
        prompt_tokens=1000,
        completion_tokens=500,
        prompt_tokens_details={"cached_tokens": 400},
        completion_tokens_details={"reasoning_tokens": 300},
    )
    assert token_counts(usage) == token_counts(usage.model_dump()) == TokenCounts(1000, 400, 500, 300)
    assert cost_usd(PRICE, usage) == pytest.approx((600 * 1 + 400 * 0.25 + 200 * 2 + 300 * 10) / 1e6)
    assert token_counts(None) == TokenCounts(0, 0, 0, 0)
