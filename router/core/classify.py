"""A request scored by the policy's learned route classifier, pure: its embedding and hashed words
through the linear model `learn` fitted (the same features it was trained on), as the route the
classifier names and that route's probability."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from router.core.features import hashed
from router.policy.artifact import Artifact


@dataclass(frozen=True)
class Verdict:
    route: str
    probability: float


def probabilities(model: Artifact, text: str, vector: np.ndarray) -> np.ndarray:
    """Each label's probability (softmax of the linear scores)."""
    buckets, weights = hashed(text, model.dims)
    logits = model.bias + model.embedding_weights @ (vector * model.embedding_scale)
    if buckets:
        logits = logits + np.asarray(weights, dtype=np.float32) @ model.word_weights[buckets]
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def classify(model: Artifact, text: str, vector: np.ndarray) -> Verdict:
    p = probabilities(model, text, vector)
    best = int(np.argmax(p))
    return Verdict(model.labels[best], float(p[best]))
