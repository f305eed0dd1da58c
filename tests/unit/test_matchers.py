"""Keyword matching (one pass, whole words, phrases, prefixes) and code detection."""

from __future__ import annotations

import pytest

from router.core.matchers import KeywordIndex, looks_like_code
from router.policy.fields import normalize_keyword

INDEX = KeywordIndex(normalize_keyword(k) for k in ["prove", "step by step", "debug*", "c++", ".py", "解释", "json"])


def fold(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Can you PROVE it?", {"prove"}),
        ("please improve my essay", set()),  # 'prove' inside a word is no hit
        ("proves nothing", set()),
        ("Explain it Step\n  by   step", {"step by step"}),  # case and white space do not matter
        ("stepbystep", set()),
        ("I was debugging this", {"debug*"}),  # a trailing * matches a prefix
        ("undebug", set()),  # ... but still starts at a word boundary
        ("is C++ faster", {"c++"}),  # keywords ending in punctuation still match
        ("open main.py now", {".py"}),
        ("请解释这段代码", {"解释"}),  # Chinese has no spaces between words: match anywhere
        ("코드를 설명해 주세요 json", {"json"}),
        ("return as JSON, please; json!", {"json"}),
        ("", set()),
    ],
)
def test_keyword_hits(text, expected):
    assert INDEX.hits(fold(text)) == expected


def test_a_latin_keyword_next_to_cjk_text_still_matches():
    assert INDEX.hits(fold("请用json格式")) == {"json"}


def test_an_empty_index_matches_nothing():
    assert KeywordIndex([]).hits("anything at all") == frozenset()


@pytest.mark.parametrize(
    "text,is_code",
    [
        ("```python\nprint(1)\n```", True),
        ("def add(a, b):\n    return a + b", True),
        ("int main() {\n  return 0;\n}", True),
        ("const f = (x) => x * 2", True),
        ("SELECT name FROM users", True),
        ("What is the capital of France?", False),
        ("Write me a short poem about the sea, please.", False),
        ("I like classes and functions in school.", False),
    ],
)
def test_code_detection(text, is_code):
    assert looks_like_code(text) is is_code
