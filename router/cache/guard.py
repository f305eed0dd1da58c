"""The semantic cache's guard against false hits.

Embeddings place "What is 2+2?" right next to "What is 3+3?"; a cache that trusts the score alone
returns the wrong answer. A candidate above the threshold is still refused when:
- another cached prompt scores almost as high (the cache cannot tell which one was asked),
- the two prompts carry different numbers, named entities or negation, or either holds code.
Earlier turns and the system prompt never differ: they are part of the partition key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from router.core.matchers import looks_like_code

# A number keeps the operators around it, so "2+2" and "2*2" differ.
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*(?:\s*[-+*/^x×÷=%]\s*\d+(?:[.,]\d+)*)*")
_NUMBER_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety".split()
)
_NEGATIONS = frozenset("not never cannot nor".split())
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SENTENCE_WORD = re.compile(r"(^|[.!?:;]\s+|\n\s*)?([A-Za-z][\w.-]*\w|[A-Za-z])")
_QUOTED = re.compile(r"`([^`]+)`|\"([^\"]+)\"")
_NOT_ALNUM = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Candidate:
    score: float
    text: str
    key: str


def choose(query: str, candidates: list[Candidate], threshold: float, margin: float) -> tuple[Candidate | None, str]:
    """The candidate to serve, or None; and a few words on why."""
    ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
    if not ranked or ranked[0].score < threshold:
        return None, "no cached prompt above the threshold"
    best = ranked[0]
    rival = next((c for c in ranked[1:] if c.text != best.text), None)
    if rival is not None and best.score - rival.score < margin:
        return None, f"ambiguous: two cached prompts score {best.score:.3f} and {rival.score:.3f}"
    reason = refusal(query, best.text)
    if reason:
        return None, reason
    return best, f"score {best.score:.3f}"


def refusal(query: str, cached: str) -> str | None:
    """Why two prompts close in meaning may still need different answers, or None."""
    if query == cached:
        return None
    if looks_like_code(query) or looks_like_code(cached):
        return "code differs"
    if _numbers(query) != _numbers(cached):
        return "numbers differ"
    if _negated(query) != _negated(cached):
        return "negation differs"
    # A name of one prompt must appear in the other, however spelled ("Hugging Face" ~ "huggingface").
    flat_query, flat_cached = _NOT_ALNUM.sub("", query.lower()), _NOT_ALNUM.sub("", cached.lower())
    if any(e not in flat_query or e not in flat_cached for e in _entities(query) ^ _entities(cached)):
        return "named entities differ"
    return None


def _numbers(text: str) -> set[str]:
    spelled = {w for w in _TOKEN.findall(text.lower()) if w in _NUMBER_WORDS}
    return {re.sub(r"\s+", "", n) for n in _NUMBER.findall(text)} | spelled


def _negated(text: str) -> bool:
    return any(w in _NEGATIONS or w.endswith("n't") for w in _TOKEN.findall(text.lower().replace("\u2019", "'")))


def _entities(text: str) -> set[str]:
    """Names: words capitalised inside a sentence, mixed-case or dotted words anywhere (PyTorch,
    torch.utils), and quoted or back-ticked spans; the first word of a sentence is capitalised
    anyway and says nothing."""
    found = {m.group(1) or m.group(2) for m in _QUOTED.finditer(text)}
    for match in _SENTENCE_WORD.finditer(text):
        starts_sentence, word = match.group(1) is not None, match.group(2)
        inner_caps = any(c.isupper() for c in word[1:]) or "." in word
        if inner_caps or (word[0].isupper() and not starts_sentence):
            found.add(word)
    flat = {_NOT_ALNUM.sub("", e.lower()) for e in found}
    # Numbers are compared on their own; "e.g." and "U.S." style abbreviations are not names.
    return {e for e in flat if len(e) > 2 and not any(c.isdigit() for c in e)}
