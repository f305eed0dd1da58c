"""A request scored by the policy's learned route classifier, pure: its embedding and hashed words
through the linear model `learn` fitted (the same features it was trained on), as the route the
classifier names and that route's probability."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from router.core.features import MAX_CHARS, hashed
from router.core.native import NATIVE
from router.policy.artifact import Artifact


@dataclass(frozen=True)
class Verdict:
    route: str
    probability: float


class Classifier:
    """A learned classifier ready for requests. With the C module (`native`; None: the Python
    reference it is held to) its weights are handed over once, and an ASCII text is hashed and
    scored in one call."""

    def __init__(self, model: Artifact, native: ModuleType | None = NATIVE):
        self.model = model
        self._native = native
        self._weights = (
            native.linear_model(model.embedding_weights, model.bias, model.word_weights, model.embedding_scale)
            if native is not None
            else None
        )

    def verdict(self, text: str, vector: np.ndarray) -> Verdict:
        """The label of the highest linear score and its softmax probability. Five labels: the
        softmax is cheaper in plain floats than in numpy calls, which cost most on the proxy's cold caches."""
        logits = self.scores(text, vector)
        top = max(logits)
        return Verdict(self.model.labels[logits.index(top)], 1.0 / sum(math.exp(score - top) for score in logits))

    def scores(self, text: str, vector: np.ndarray) -> list[float]:
        native, model = self._native, self.model
        if native is not None and vector.dtype == np.float32 and vector.flags.c_contiguous:
            if text.isascii():
                return native.scores_ascii(self._weights, vector, text, MAX_CHARS)
            return native.scores(self._weights, vector, *hashed(text, model.dims))
        buckets, weights = hashed(text, model.dims)
        scale = model.embedding_scale
        logits = [b + scale * e for b, e in zip(model.bias.tolist(), (model.embedding_weights @ vector).tolist())]
        if buckets:
            words = (np.asarray(weights, dtype=np.float32) @ model.word_weights[buckets]).tolist()
            logits = [score + word for score, word in zip(logits, words)]
        return logits
