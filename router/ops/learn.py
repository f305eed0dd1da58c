"""`python -m router learn LABELLED.jsonl`: fit the route classifier a policy names (`classifier:`,
routes with `when: {learned: true}`) from labelled prompts, and say how well it does.

The model is a multinomial logistic regression over the request's embedding (the policy's
embedder) and its hashed words (router/core/features.py). Three steps:
- a held-out split (stratified, seeded) scores a model fitted on the rest: per-route precision and
  recall and the confusion matrix, the figures `learn` prints;
- cross-validated predictions over all the prompts give each route's precision at each probability
  threshold, from which the loader sets the threshold a route's `min_precision` asks for;
- the model it writes is fitted on all the prompts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split

from router.core.features import hashed
from router.core.request import RequestView
from router.core.semantic import Embedder
from router.ops.evaluate import Example
from router.policy.artifact import Artifact, Curve

DIMS = 1 << 16
SCOPE = "user"  # every user message: a follow-up alone says little
EMBEDDING_SCALE = 1.0
C = 10.0  # inverse regularisation strength
THRESHOLDS = tuple(round(t * 0.05, 2) for t in range(20))


@dataclass(frozen=True)
class Report:
    labels: tuple[str, ...]
    held_out: int
    precision: dict[str, float]
    recall: dict[str, float]
    support: dict[str, int]
    confusion: dict[str, dict[str, int]]  # true route -> predicted route -> count

    def render(self) -> str:
        lines = [f"held-out split: {self.held_out} prompts (model fitted on the rest)"]
        lines.append(f"{'route':<16} {'n':>4} {'precision':>10} {'recall':>7}  predicted as")
        for label in self.labels:
            went = ", ".join(f"{k} {v}" for k, v in sorted(self.confusion[label].items(), key=lambda kv: -kv[1]))
            figures = f"{self.support[label]:>4} {self.precision[label]:>10.1%} {self.recall[label]:>7.1%}"
            lines.append(f"{label:<16} {figures}  {went}")
        return "\n".join(lines)


def features(examples: Sequence[Example], embedder: Embedder) -> csr_matrix:
    rows, cols, values = [], [], []
    vectors = []
    for i, example in enumerate(examples):
        text = RequestView(example.body, 10**9).text(SCOPE)
        buckets, weights = hashed(text, DIMS)
        rows += [i] * len(buckets)
        cols += buckets
        values += weights
        vectors.append(embedder.embed(text.strip()) if text.strip() else None)
    size = next((len(v) for v in vectors if v is not None), 0)
    dense = np.stack([v if v is not None else np.zeros(size, np.float32) for v in vectors]) * EMBEDDING_SCALE
    words = csr_matrix((values, (rows, cols)), shape=(len(examples), DIMS), dtype=np.float32)
    return hstack([words, csr_matrix(dense)]).tocsr()


def _fit(x: csr_matrix, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=5000).fit(x, y)


def learn(
    examples: Sequence[Example], embedder: Embedder, embedder_name: str, holdout: float, seed: int
) -> tuple[Artifact, Report]:
    """`embedder_name`: what the policy calls `embedder` (settings.embedder), which the loader checks."""
    labelled = [e for e in examples if e.route]
    y = np.array([e.route for e in labelled])
    counts = Counter(y)
    if len(counts) < 2 or min(counts.values()) < 5:
        raise ValueError(f"learning needs two routes or more with 5 prompts each at least; found {dict(counts)}")
    x = features(labelled, embedder)
    report = _held_out(x, y, holdout, seed)
    curves = _curves(x, y, seed)
    model = _fit(x, y)
    labels = tuple(str(c) for c in model.classes_)
    weights, bias = model.coef_.astype(np.float32), model.intercept_.astype(np.float32)
    if len(labels) == 2:  # one row for two classes: softmax over (0, score) is its sigmoid
        weights, bias = np.vstack([np.zeros_like(weights), weights]), np.concatenate([[0.0], bias]).astype(np.float32)
    artifact = Artifact(
        path="",
        labels=labels,
        embedder=embedder_name,
        dims=DIMS,
        embedding_scale=EMBEDDING_SCALE,
        messages=SCOPE,
        word_weights=np.ascontiguousarray(weights[:, :DIMS].T),
        embedding_weights=np.ascontiguousarray(weights[:, DIMS:]),
        bias=bias,
        curves=curves,
    )
    return artifact, report


def _held_out(x: csr_matrix, y: np.ndarray, holdout: float, seed: int) -> Report:
    train, test = train_test_split(np.arange(len(y)), test_size=holdout, random_state=seed, stratify=y)
    predicted = _fit(x[train], y[train]).predict(x[test])
    labels = tuple(sorted(set(y)))
    truth = y[test]
    confusion = {a: dict(Counter(p for t, p in zip(truth, predicted) if t == a)) for a in labels}
    precision, recall, support = {}, {}, {}
    for label in labels:
        taken = predicted == label
        wanted = truth == label
        hits = int((taken & wanted).sum())
        precision[label] = hits / int(taken.sum()) if taken.any() else 0.0
        recall[label] = hits / int(wanted.sum()) if wanted.any() else 0.0
        support[label] = int(wanted.sum())
    return Report(labels, len(test), precision, recall, support, confusion)


def _curves(x: csr_matrix, y: np.ndarray, seed: int) -> dict[str, Curve]:
    """Each route's precision at each threshold, from predictions for prompts left out of the fit."""
    folds = min(5, min(Counter(y).values()))
    best = np.empty(len(y), dtype=object)
    probability = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = _fit(x[train], y[train])
        p = model.predict_proba(x[test])
        best[test] = model.classes_[p.argmax(1)]
        probability[test] = p.max(1)
    curves = {}
    for label in sorted(set(y)):
        precision, support = [], []
        for threshold in THRESHOLDS:
            taken = (best == label) & (probability >= threshold)
            support.append(int(taken.sum()))
            precision.append(float((y[taken] == label).mean()) if taken.any() else 0.0)
        curves[label] = Curve(THRESHOLDS, tuple(precision), tuple(support))
    return curves
