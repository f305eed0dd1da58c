"""The language of a prompt, fast and without a model: the script its letters are written in, and
for Latin script the language whose commonest words it uses most.

Chinese, Japanese and Korean share Han characters: kana make a text Japanese, Hangul Korean, Han
alone Chinese. One CJK character carries about a word's meaning, so it weighs as much as a Latin
word (four letters) when a prompt mixes scripts: "用 Python 写一个排序函数" is Chinese.
Reads the first MAX_CHARS characters.
"""

from __future__ import annotations

import re

MAX_CHARS = 1000  # plenty to tell a script by
LATIN_CHARS = 300  # and some 50 words to tell a Latin-script language by
UNDETERMINED = "und"
_CJK_WEIGHT = 4  # Latin letters one CJK character counts for

_SCRIPTS = (  # (language, its characters as a regex class)
    ("ja", "\u3040-\u30ff"),  # hiragana and katakana
    ("ko", "\uac00-\ud7af\u1100-\u11ff"),  # hangul
    ("zh", "\u4e00-\u9fff\u3400-\u4dbf"),  # CJK ideographs
    ("ru", "\u0400-\u04ff"),  # Cyrillic
    ("ar", "\u0600-\u06ff"),
    ("he", "\u0590-\u05ff"),
    ("el", "\u0370-\u03ff"),
    ("hi", "\u0900-\u097f"),  # Devanagari
    ("th", "\u0e00-\u0e7f"),
)
# One scan finds the runs of every script; group i is _SCRIPTS[i - 1].
# The look-ahead lets the scan pass Latin text at the cost of one class test a character.
_RUNS = re.compile(
    "(?=["
    + "".join(chars for _, chars in _SCRIPTS)
    + "])(?:"
    + "|".join(f"([{chars}]+)" for _, chars in _SCRIPTS)
    + ")"
)
_CJK = frozenset({"ja", "ko", "zh"})
_LATIN_WORD = re.compile(r"[a-zà-ÿ']+")
# Words that are frequent in one of these languages and rare in the others.
_COMMON_WORDS = {
    "en": "the and is are of to in that it for with you this what how be on not can was have do which why".split(),
    "fr": "le la les des est et une un du que qui pour dans pas sur avec vous ce je il sont au comment".split(),
    "de": "der die das und ist nicht ein eine ich sie es mit den zu von auf für wie was sind dem auch".split(),
    "es": "el la los las es y un una que de en por para con no se del como qué son lo está".split(),
    "it": "il lo la gli le è e un una che di per con non sono del della come perché questo".split(),
    "pt": "o a os as é e um uma que de em para com não se do da como são você isso".split(),
}
_WORD_LANGUAGES: dict[str, list[str]] = {}
for _language, _words in _COMMON_WORDS.items():
    for _word in _words:
        _WORD_LANGUAGES.setdefault(_word, []).append(_language)


def detect(text: str) -> str:
    """The language code of `text` (one of router.policy.fields.Language), `und` when it cannot tell."""
    text = text[:MAX_CHARS]
    counts: dict[str, int] = {}
    for run in _RUNS.finditer(text):
        language = _SCRIPTS[run.lastindex - 1][0]  # type: ignore[operator]  # a match sets one group
        counts[language] = counts.get(language, 0) + run.end() - run.start()
    # What is not in another script counts as Latin (digits and punctuation too, but not spaces):
    # counting Latin letters exactly would cost as much again.
    latin = len(text) - sum(counts.values()) - text.count(" ")
    if "ja" in counts:  # kana appear only in Japanese; its Han characters count for it too
        counts["ja"] += counts.pop("zh", 0)
    weighted = {lang: n * (_CJK_WEIGHT if lang in _CJK else 1) for lang, n in counts.items()}
    best = max(weighted, key=weighted.__getitem__, default=None)
    if best is not None and weighted[best] >= latin:
        return best
    return _latin_language(text[:LATIN_CHARS]) if latin else UNDETERMINED


def _latin_language(text: str) -> str:
    scores: dict[str, int] = {}
    for word in _LATIN_WORD.findall(text.lower()):
        for language in _WORD_LANGUAGES.get(word, ()):
            scores[language] = scores.get(language, 0) + 1
    if not scores:
        return UNDETERMINED
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return UNDETERMINED
    return ranked[0][0]
