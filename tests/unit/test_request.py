"""The token estimate and the request view's texts."""

from __future__ import annotations

import pytest

from router import RequestRejected, RequestView, estimate_tokens


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


@pytest.mark.parametrize(
    "field,value,fragment",
    [
        ("tools", "nope", "`tools` must be a list of tools"),
        ("tools", [{"type": "function"}], "`tools`[0] is a function tool without `function.name`"),
        ("tools", [{"function": {"name": "f"}}], "`tools`[0] must have a string `type`"),
        ("tool_choice", "sometimes", "`tool_choice` must be one of none, auto, required"),
        ("response_format", "json", "`response_format` must be an object"),
        ("temperature", "hot", "`temperature` must be a number from 0 to 2, not 'hot'"),
        ("temperature", 3, "`temperature` must be from 0 to 2"),
        ("temperature", True, "`temperature` must be a number"),
        ("top_p", 1.5, "`top_p` must be from 0 to 1"),
        ("stream", "yes", "`stream` must be true or false, not 'yes'"),
        ("n", 0, "`n` must be a positive integer"),
        ("stop", [1, 2], "`stop` must be a string or a list of strings"),
        ("seed", 1.5, "`seed` must be an integer"),
    ],
)
def test_parameters_of_the_wrong_shape_are_refused_with_400(field, value, fragment):
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], field: value}
    with pytest.raises(RequestRejected) as caught:
        RequestView(body, max_prompt_chars=10_000)
    assert caught.value.status == 400 and fragment in caught.value.message


def test_an_unknown_role_is_refused():
    with pytest.raises(RequestRejected, match=r"messages\[1\].role must be one of .*not 'wizard'"):
        RequestView(
            {"model": "auto", "messages": [{"role": "user", "content": "a"}, {"role": "wizard", "content": "b"}]},
            max_prompt_chars=10_000,
        )


def test_well_formed_parameters_and_nulls_pass():
    body = {
        "model": "auto",
        "messages": [{"role": "developer", "content": "x"}, {"role": "user", "content": "hi"}],
        "temperature": 0,
        "top_p": 1,
        "stream": False,
        "n": 1,
        "stop": "\n",
        "seed": 7,
        "tool_choice": "auto",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}, {"type": "web_search"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}},
        "presence_penalty": None,
        "logit_bias": {"50256": -100},
    }
    assert RequestView(body, max_prompt_chars=10_000).text("last_user") == "hi"
