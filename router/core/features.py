"""The words of a text as hashed, weighted features for a learned route classifier: word unigrams
and bigrams where words are spaced, character unigrams and bigrams in Chinese, Japanese and Korean
runs (no spaces to split on). Hashed into `dims` buckets with CRC-32 (stable across processes,
unlike `hash`), weighted 1 + log(count), scaled to unit length. The same code makes the features
`learn` trains on and the ones a request is scored with."""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from itertools import pairwise

from router.core.native import NATIVE

_CJK_RUN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")
MAX_CHARS = 4000  # the head of a long prompt says what it asks; the rest costs time and adds little


def grams(text: str) -> Counter[str]:
    text = text[:MAX_CHARS].lower()
    counts: Counter[str] = Counter()
    runs = _CJK_RUN.findall(text)
    if runs:
        for run in runs:
            counts.update(run)
            counts.update(run[i : i + 2] for i in range(len(run) - 1))
        text = _CJK_RUN.sub(" ", text)
    words = _WORD.findall(text)
    counts.update(words)
    counts.update(map(" ".join, pairwise(words)))
    return counts


def hashed(text: str, dims: int) -> tuple[list[int], list[float]]:
    """(bucket indices, weights) of the text's grams; the weights have unit length."""
    if NATIVE is not None and text.isascii():
        return NATIVE.hashed_ascii(text, dims, MAX_CHARS)
    return python_hashed(text, dims)


def python_hashed(text: str, dims: int) -> tuple[list[int], list[float]]:
    """`hashed` in Python: for text that is not ASCII, and the reference the C module is held to."""
    buckets: dict[int, float] = {}
    for gram, count in grams(text).items():
        index = zlib.crc32(gram.encode()) % dims
        # Most grams occur once: 1 + log(1) is 1.0 exactly, without the call.
        buckets[index] = buckets.get(index, 0.0) + (1.0 + math.log(count) if count > 1 else 1.0)
    norm = math.sqrt(sum(w * w for w in buckets.values())) or 1.0
    return list(buckets), [w / norm for w in buckets.values()]
