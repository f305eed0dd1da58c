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
    ],
)
def test_refusals(query, cached, reason):
    assert refusal(query, cached) == reason


@pytest.mark.parametrize(
    "query,cached",
    [
        ("What is the capital city of France?", "Which city is the capital of France?"),
        ("How do I reverse a list in Python?", "What's the way to reverse a Python list in python?"),
        ("Hugging Face Hub hosts models.", "The huggingface hub is where models are hosted."),
        ("Explain TCP in two sentences.", "In two sentences, explain TCP."),
        ("Same text", "Same text"),
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
