"""The semantic guard: refuses close prompts that need different answers."""

from __future__ import annotations

import pytest

from router.cache.guard import Candidate, choose, refusal


@pytest.mark.parametrize(
    "query,cached,reason",
    [
        ("What is 2+2?", "What is 3+3?", "numbers differ"),
        ("What is 2+2?", "What is 2*2?", "numbers differ"),
        ("Convert 5 miles to km", "Convert 50 miles to km", "numbers differ"),
        ("What is the capital of France?", "What is the capital of Germany?", "named entities differ"),
        ("Is Python dynamically typed?", "Is Python not dynamically typed?", "negation differs"),
        ("Why doesn't my loop stop?", "Why does my loop stop?", "negation differs"),
        ("Fix this:\n```\nx = 1\n```", "Fix this:\n```\nx = 2\n```", "code differs"),
        ("Tell me about `load_dataset`", "Tell me about `load_from_disk`", "named entities differ"),
        # One word swapped in a short question is another question.
        ("How do I open a port in the firewall?", "How do I close a port in the firewall?", "a word differs"),
        ("How do I sort a list in descending order?", "How do I sort a list in ascending order?", "a word differs"),
    ],
)
def test_refusals(query, cached, reason):
    assert (refusal(query, cached) or "").startswith(reason)


@pytest.mark.parametrize(
    "query,cached",
    [
        ("What is the capital city of France?", "Which city is the capital of France?"),
        ("How do I reverse a list in Python?", "What's the way to reverse a Python list in python?"),
        ("Hugging Face Hub hosts models.", "The huggingface hub is where models are hosted."),
        ("Explain TCP in two sentences.", "In two sentences, explain TCP."),
        ("Same text", "Same text"),
        ("How many days are there in a leap year?", "A leap year has how many days?"),
        ("What makes the sky look blue?", "Why is the sky blue?"),
    ],
)
def test_paraphrases_pass(query, cached):
    assert refusal(query, cached) is None


def test_choose_takes_the_best_above_the_threshold():
    best, why = choose(
        "Which city is the capital of France?",
        [
            Candidate(0.81, "What is France's biggest city?", "b"),
            Candidate(0.97, "What is the capital city of France?", "a"),
        ],
        0.8,
        0.01,
    )
    assert best is not None and best.key == "a" and "0.970" in why


def test_choose_misses_below_the_threshold():
    assert choose("q", [Candidate(0.79, "q2", "a")], 0.8, 0.01)[0] is None


def test_choose_refuses_an_ambiguous_match():
    best, why = choose("q", [Candidate(0.91, "first", "a"), Candidate(0.905, "second", "b")], 0.8, 0.01)
    assert best is None and why.startswith("ambiguous")


def test_duplicates_of_one_prompt_are_not_ambiguous():
    best, _ = choose("same", [Candidate(0.91, "same", "a"), Candidate(0.91, "same", "b")], 0.8, 0.01)
    assert best is not None


CLOSE = [
    Candidate(0.912, "The `field` method selects a schema field by its column name or numeric index.", "a"),
    Candidate(0.905, "The `field` method is used to look up a column of a table by position.", "b"),
]


def test_the_second_stage_serves_a_close_call_that_shares_clearly_more_words():
    query = "A column name or numeric index can be used to select a schema field with the `field` method."
    best, why = choose(query, CLOSE, 0.7, 0.02, tiebreak=0.1)
    assert best is not None and best.key == "a" and why.startswith("second stage")
    assert choose(query, CLOSE, 0.7, 0.02, tiebreak=0.0)[0] is None  # without it: refused as ambiguous


def test_the_second_stage_refuses_a_known_near_miss():
    """Two cached questions an embedding cannot tell apart, and a question that shares as many words
    with either: the second stage refuses rather than guess."""
    close = [
        Candidate(0.93, "How do I convert Celsius to Fahrenheit?", "to-f"),
        Candidate(0.925, "How do I convert Fahrenheit to Celsius?", "to-c"),
    ]
    best, why = choose("What is the formula to convert between Fahrenheit and Celsius?", close, 0.7, 0.02, 0.1)
    assert best is None and "share as many words" in why
