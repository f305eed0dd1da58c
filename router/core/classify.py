"""A request scored by the policy's learned route classifier, pure: its embedding and hashed words
through the linear model `learn` fitted (the same features it was trained on), as the route the
classifier names and that route's probability."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from router.core.features import hashed
from router.core.native import NATIVE
from router.policy.artifact import Artifact


@dataclass(frozen=True)
class Verdict:
    route: str
    probability: float


def classify(model: Artifact, text: str, vector: np.ndarray) -> Verdict:
    """The label of the highest linear score and its softmax probability. Five labels: the softmax
    is cheaper in plain floats than in numpy calls, which cost most on the proxy's cold caches."""
    buckets, weights = hashed(text, model.dims)
    logits = _logits(model, vector, buckets, weights)
    top = max(logits)
    return Verdict(model.labels[logits.index(top)], 1.0 / sum(math.exp(score - top) for score in logits))


def _logits(
    model: Artifact, vector: np.ndarray, buckets: list[int], weights: list[float], native=NATIVE
) -> list[float]:
    """`native`: the C module (None: the Python reference it is held to)."""
    scale = model.embedding_scale
    if native is not None and vector.dtype == np.float32 and vector.flags.c_contiguous:
        return native.scores(vector, model.embedding_weights, model.bias, scale, model.word_weights, buckets, weights)
    logits = [b + scale * e for b, e in zip(model.bias.tolist(), (model.embedding_weights @ vector).tolist())]
    if buckets:
        words = (np.asarray(weights, dtype=np.float32) @ model.word_weights[buckets]).tolist()
        logits = [score + word for score, word in zip(logits, words)]
    return logits
