"""The semantic cache's guard against false hits.

Embeddings place "What is 2+2?" right next to "What is 3+3?"; a cache that trusts the score alone
returns the wrong answer. A candidate above the threshold is still refused when:
- another cached prompt scores almost as high (within the margin) and the second stage cannot
  tell them apart: it ranks the close candidates by the words they share with the question and
  serves one only when it leads by `tiebreak` (0: refuse every close call),
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
_WORD_OR_NUMBER = re.compile(r"[a-z0-9]+")
_QUESTION_WORDS = frozenset(
    "what which how who whom whose when where why do does did i me my we our there have has get "
    "please tell explain way".split()
)
_STOPWORDS = frozenset(
    "the a an of to and or in on for is are be by with as that this it its can you your from at which".split()
)


@dataclass(frozen=True)
class Candidate:
    score: float
    text: str
    key: str


def choose(
    query: str, candidates: list[Candidate], threshold: float, margin: float, tiebreak: float = 0.0
) -> tuple[Candidate | None, str]:
    """The candidate to serve, or None; and a few words on why."""
    ranked = sorted(candidates, key=lambda c: c.score, reverse=True)
    if not ranked or ranked[0].score < threshold:
        return None, "no cached prompt above the threshold"
    best = ranked[0]
    close: list[Candidate] = []  # the distinct prompts within the margin, best first
    for c in ranked:
        if best.score - c.score < margin and all(c.text != k.text for k in close):
            close.append(c)
    why = f"score {best.score:.3f}"
    if len(close) > 1:
        chosen, why = _second_stage(query, close, tiebreak)
        if chosen is None:
            return None, why
        best = chosen
    reason = refusal(query, best.text)
    if reason:
        return None, reason
    return best, why


def _second_stage(query: str, close: list[Candidate], tiebreak: float) -> tuple[Candidate | None, str]:
    """Several cached prompts score within the margin: the one that shares clearly more of the
    question's words, or None. A reworded question keeps some of its original's words, and the
    embedding's near-ties are mostly prompts that differ in the very words that matter."""
    ambiguous = f"ambiguous: cached prompts score {close[0].score:.3f} and {close[1].score:.3f}"
    if tiebreak <= 0:
        return None, ambiguous
    words = _stems(query)
    overlaps = sorted(((_overlap(words, _stems(c.text)), c) for c in close), key=lambda x: x[0], reverse=True)
    (first, chosen), (second, _) = overlaps[0], overlaps[1]
    if first - second < tiebreak:
        return None, f"{ambiguous}, and share as many words with the question ({first:.2f}, {second:.2f})"
    return chosen, f"second stage: {first:.2f} of the words shared, {second:.2f} for the next"


def _stems(text: str) -> set[str]:
    """Content words cut to five letters: a crude stem ("configure", "configuration")."""
    return {w[:5] for w in _WORD_OR_NUMBER.findall(text.lower()) if w not in _STOPWORDS}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / (len(a | b) or 1)


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
    return _swapped(query, cached)


def _swapped(query: str, cached: str) -> str | None:
    """Two short questions that differ in exactly one word each are most often two questions
    ("sort a list in ascending order" / "in descending order", "cancel" / "pause my
    subscription"); a reworded question changes more, and in a long prompt one word swapped is
    more often a synonym (our harder set: 55 of 140 near misses caught, 3 of GPTCache's 999
    paraphrases refused; with up to 5 shared words: 66 caught, 19 refused)."""
    mine, theirs = _stems(query) - _QUESTION_WORDS, _stems(cached) - _QUESTION_WORDS
    only_mine, only_theirs, shared = mine - theirs, theirs - mine, len(mine & theirs)
    if len(only_mine) == len(only_theirs) == 1 and 2 <= shared <= 3:
        return f"a word differs: {next(iter(only_mine))!r} / {next(iter(only_theirs))!r}"
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
