"""The token estimate and the request view's texts."""

from __future__ import annotations

from router import RequestView, estimate_tokens


def test_estimate_is_about_four_ascii_characters_a_token():
    assert estimate_tokens("a" * 400) == 100
    assert estimate_tokens("") == 0


def test_cjk_characters_count_about_one_token_each():
    assert 90 <= estimate_tokens("你好" * 50) <= 110


def test_texts_by_scope():
    view = RequestView(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "First   QUESTION"},
                {"role": "assistant", "content": None, "tool_calls": []},
                {"role": "user", "content": "Second"},
            ],
        },
        max_prompt_chars=10_000,
    )
    assert view.text("last_user") == "Second"
    assert view.text("user") == "First   QUESTION\nSecond"
    assert view.text("system") == "Be brief."
    assert view.folded("user") == "first question second"
    assert view.prompt_tokens == sum(estimate_tokens(t) for t in ["Be brief.", "First   QUESTION", "", "Second"]) + 16
