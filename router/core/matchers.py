"""Matchers compiled once per policy: every keyword of every route in one Aho-Corasick automaton,
so a prompt is scanned once per message scope however many keywords the policy holds.

The automaton is ahocorasick-rs (Rust): on a 1K-token prompt it scans in ~10 us where pyahocorasick
took ~50 us and one scan per keyword with `str.find` ~90 us (scripts/bench_routing.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

import ahocorasick_rs

from router.core.classify import Verdict
from router.core.eligibility import who_matches
from router.core.language import detect
from router.core.request import RequestView
from router.core.semantic import Embedder, ExampleSet, Match, shown
from router.policy.schema import When
from router.policy.traffic import Who

_SCOPE_WORDS = {
    "last_user": "the last user message",
    "user": "the user messages",
    "system": "the system prompt",
    "all": "the conversation",
}
# `when` fields on the request's shape: (field, the capability or flag it reads, how reasons say it)
_SHAPES = (
    ("images", ("vision",), "images"),
    ("audio", ("audio",), "audio"),
    ("files", ("files",), "files"),
    ("tools", ("tools",), "tools"),
    ("json_output", ("json", "json_schema"), "JSON output"),
)
# One line that looks like code is enough; prose rarely starts a line with these or ends one with ; { }.
# Each pattern starts with a literal or a character set, which lets `re` skip ahead quickly.
_CODE_MARKS = ("```", "=>", "#include")
_CODE_LINE = (
    r"[ \t]*(?:def |class |import |from [\w.]+ import |function |public |private |"
    r"const |let |var |fn |func |package |SELECT |for \(|if \(|while \()"
)
_CODE_FIRST_LINE = re.compile(_CODE_LINE)
_CODE_LATER_LINE = re.compile("\n" + _CODE_LINE)
_CODE_LINE_END = re.compile(r"[;{}][ \t]*(?:\n|$)")


def _is_word(ch: str) -> bool:
    """Letters of scripts that separate words with spaces. Chinese, Japanese, Korean (whose particles
    attach to nouns) and Thai have no such boundary, so their keywords match anywhere."""
    return (ch.isalnum() or ch == "_") and ord(ch) < 0x2E80 and not "\u0e00" <= ch <= "\u0e7f"


class KeywordIndex:
    """Finds which of many normalized keywords occur in a folded text, as whole words.

    A keyword ending in `*` matches as a prefix (`debug*` finds "debugging"). Whole-word checks
    apply only at keyword ends that are word characters, so `c++` and `.py` still match.
    """

    def __init__(self, keywords: Iterable[str]):
        variants: dict[str, list[tuple[str, bool]]] = {}
        for keyword in set(keywords):
            base = keyword[:-1] if keyword.endswith("*") else keyword
            right_check = _is_word(base[-1]) and not keyword.endswith("*")
            variants.setdefault(base, []).append((keyword, right_check))
        bases = sorted(variants)
        self._meta = [(_is_word(base[0]), tuple(variants[base])) for base in bases]
        self._automaton = ahocorasick_rs.AhoCorasick(bases) if bases else None
        # ASCII text scans ~30 % faster as bytes, where byte offsets are character offsets.
        self._ascii = ahocorasick_rs.BytesAhoCorasick([b.encode() for b in bases]) if bases else None

    def hits(self, folded: str) -> frozenset[str]:
        if self._automaton is None or self._ascii is None or not folded:
            return frozenset()
        found: set[str] = set()
        size = len(folded)
        if folded.isascii():
            matches = self._ascii.find_matches_as_indexes(folded.encode(), overlapping=True)
        else:
            matches = self._automaton.find_matches_as_indexes(folded, overlapping=True)
        for index, start, end in matches:
            left_check, variants = self._meta[index]
            if left_check and start > 0 and _is_word(folded[start - 1]):
                continue
            word_follows = end < size and _is_word(folded[end])
            for keyword, right_check in variants:
                if not (right_check and word_follows):
                    found.add(keyword)
        return frozenset(found)


def looks_like_code(text: str) -> bool:
    # A one-character `in` is a memchr (~0.1 us on 4K characters), a longer one a slower scan (~3 us):
    # the mark's rare first character is looked for first.
    if any(mark[0] in text and mark in text for mark in _CODE_MARKS):
        return True
    if _CODE_FIRST_LINE.match(text) or ("\n" in text and _CODE_LATER_LINE.search(text)):
        return True
    # `in` is a memchr; the regex walks every character, so it runs only when one of them is there.
    return any(ch in text for ch in ";{}") and _CODE_LINE_END.search(text) is not None


@dataclass(frozen=True)
class Condition:
    """A route's compiled `when`; `explain` returns the reasons it holds, or None when it does not."""

    scope: str
    any: frozenset[str]
    all: frozenset[str]
    none: frozenset[str]
    regex: tuple[re.Pattern[str], ...]
    min_tokens: int | None
    max_tokens: int | None
    code: bool | None
    semantic: bool = False  # the route names examples: it holds only when the request is like one
    examples: ExampleSet | None = None  # their vectors; None until an embedder made them
    learned: str | None = None  # the route the learned classifier must name for this condition to hold
    min_probability: float = 0.0  # and the probability it must give it
    who: Who | None = None  # the sender's identity, when `when` names one
    shapes: tuple[tuple[str, tuple[str, ...], bool], ...] = ()  # (what, capabilities that show it, wanted)
    stream: bool | None = None
    output: tuple[int | None, int | None, int] | None = None  # min, max, and what a request without max_tokens asks
    languages: frozenset[str] = frozenset()

    @classmethod
    def compile(
        cls,
        when: When,
        examples: ExampleSet | None = None,
        learned: str | None = None,
        min_probability: float = 0.0,
        default_output: int = 1024,
    ) -> Condition:
        identity = Who(**{f: getattr(when, f) for f in Who.model_fields})
        output = (when.min_output_tokens, when.max_output_tokens, default_output)
        return cls(
            scope=when.messages,
            any=frozenset(when.any),
            all=frozenset(when.all),
            none=frozenset(when.none),
            regex=tuple(re.compile(p) for p in when.regex),
            min_tokens=when.min_tokens,
            max_tokens=when.max_tokens,
            code=when.code,
            semantic=bool(when.examples),
            examples=examples,
            learned=learned,
            min_probability=min_probability,
            who=identity if identity != Who() else None,
            shapes=tuple(
                (words, needs, getattr(when, field))
                for field, needs, words in _SHAPES
                if getattr(when, field) is not None
            ),
            stream=when.stream,
            output=output if output[:2] != (None, None) else None,
            languages=frozenset(when.language),
        )

    @cached_property  # read for every route of every request: worked out once
    def keywords(self) -> frozenset[str]:
        return self.any | self.all | self.none

    @cached_property
    def on_request(self) -> bool:
        """Some condition reads who asks or the request's shape."""
        return bool(self.who or self.shapes or self.stream is not None or self.output)

    def explain(
        self,
        view: RequestView,
        hits: dict[str, frozenset[str]],
        index: KeywordIndex,
        embedder: Embedder | None = None,
        classifier: Callable[[RequestView], Verdict | None] | None = None,
    ) -> list[str] | None:
        """`classifier`: the policy's learned classifier's verdict on a request (None without one)."""
        reasons: list[str] = []
        if self.on_request and not self._request_holds(view, reasons):
            return None
        tokens = view.prompt_tokens
        if self.min_tokens is not None:
            if tokens < self.min_tokens:
                return None
            reasons.append(f"prompt ~{tokens} tokens >= {self.min_tokens}")
        if self.max_tokens is not None:
            if tokens > self.max_tokens:
                return None
            reasons.append(f"prompt ~{tokens} tokens <= {self.max_tokens}")
        if self.keywords and not self._keywords_hold(view, hits, index, reasons):
            return None
        if self.languages:
            language = view.once(f"language:{self.scope}", lambda: detect(view.text(self.scope)))
            if language not in self.languages:
                return None
            reasons.append(f"language '{language}' in {_SCOPE_WORDS[self.scope]}")
        if self.regex and not self._regex_holds(view, reasons):
            return None
        if self.code is not None and looks_like_code(view.text(self.scope)) != self.code:
            return None
        if self.code is not None:
            reasons.append(f"{'code' if self.code else 'no code'} in {_SCOPE_WORDS[self.scope]}")
        if self.learned is not None:
            verdict = classifier(view) if classifier is not None else None
            if verdict is None or verdict.route != self.learned or verdict.probability < self.min_probability:
                return None
            bar = f" >= {self.min_probability:.2f}" if self.min_probability else ""
            reasons.append(f"classified as '{self.learned}' (p {verdict.probability:.2f}{bar})")
        if self.semantic:  # last: the one condition that may need an embedding
            match = self.match(view, embedder)
            if match is None or self.examples is None or match.score < self.examples.threshold:
                return None
            reasons.append(f"like example '{shown(match.example)}' ({match.score:.2f}) in {_SCOPE_WORDS[self.scope]}")
        return reasons

    def _request_holds(self, view: RequestView, reasons: list[str]) -> bool:
        """The conditions on who asks and on the request's shape, cheapest of all: checked first."""
        if self.who is not None:
            if not who_matches(self.who, view.identity):
                return False
            reasons.append("the sender matches")
        for words, needs, wanted in self.shapes:
            if any(n in view.needs for n in needs) != wanted:
                return False
            reasons.append(f"{'has' if wanted else 'no'} {words}")
        if self.stream is not None:
            if view.stream != self.stream:
                return False
            reasons.append("streamed" if self.stream else "not streamed")
        if self.output is not None:
            low, high, default = self.output
            asked = view.max_output_tokens or default
            if (low is not None and asked < low) or (high is not None and asked > high):
                return False
            reasons.append(f"output up to {asked} tokens")
        return True

    def match(self, view: RequestView, embedder: Embedder | None) -> Match | None:
        """The example closest to the request's text; None without examples, an embedder or a text."""
        if self.examples is None or embedder is None:
            return None
        vector = view.vector(self.scope, embedder)
        return None if vector is None else self.examples.nearest(vector)

    def _keywords_hold(self, view, hits, index, reasons: list[str]) -> bool:
        found = hits.get(self.scope)
        if found is None:
            found = hits[self.scope] = index.hits(view.folded(self.scope))
        where = _SCOPE_WORDS[self.scope]
        if self.any:
            matched = sorted(self.any & found)
            if not matched:
                return False
            reasons.append(f"keyword {_quote(matched)} in {where}")
        if self.all:
            if not self.all <= found:
                return False
            reasons.append(f"all keywords {_quote(sorted(self.all))} in {where}")
        return not self.none & found

    def _regex_holds(self, view, reasons: list[str]) -> bool:
        text = view.text(self.scope)
        for pattern in self.regex:
            if pattern.search(text):
                reasons.append(f"regex '{pattern.pattern}' in {_SCOPE_WORDS[self.scope]}")
                return True
        return False


def _quote(words: list[str]) -> str:
    return ", ".join(f"'{w}'" for w in words)
