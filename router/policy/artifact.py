"""A learned route classifier as `python -m router learn` writes it: one .npz file holding a linear
model over a request's embedding and its hashed words (router/core/features.py), the routes it
tells apart, the embedder it was trained with, and each route's precision at each probability
threshold, measured on predictions for prompts the model was not trained on. The loader reads it
once, checks it against the policy, and hands it to the compiled policy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = 1


class ArtifactError(Exception):
    """The file is missing, unreadable, or not a classifier this version can use."""


@dataclass(frozen=True)
class Curve:
    """A route's precision when it is taken only at probability `thresholds[i]` or more, and how
    many of the scored prompts that leaves it (`support[i]`)."""

    thresholds: tuple[float, ...]
    precision: tuple[float, ...]
    support: tuple[int, ...]

    def threshold_for(self, min_precision: float, min_support: int = 5) -> float | None:
        """The lowest threshold whose precision reaches `min_precision` on at least `min_support`
        prompts, as does every threshold above it down from the highest with that support; or None."""
        found = None
        for threshold, precision, support in reversed(list(zip(self.thresholds, self.precision, self.support))):
            if support < min_support and found is None:
                continue  # too few prompts this high to say anything
            if precision < min_precision or support < min_support:
                break
            found = threshold
        return found

    def most_confident(self, min_support: int = 5) -> tuple[float, float, int] | None:
        """(threshold, precision, support) at the highest threshold that leaves `min_support`
        prompts: where `threshold_for` starts; None when no threshold leaves that many."""
        points = zip(self.thresholds, self.precision, self.support)
        return next((p for p in reversed(list(points)) if p[2] >= min_support), None)


@dataclass(frozen=True)
class Artifact:
    path: str
    labels: tuple[str, ...]  # the routes, in the order of the weights' rows
    embedder: str
    dims: int  # hashed word buckets
    embedding_scale: float  # the embedding's weight beside the words
    messages: str  # the text the model reads (a request scope: `user`, all user messages)
    word_weights: np.ndarray  # (dims, labels): a prompt's buckets pick rows
    embedding_weights: np.ndarray  # (labels, embedding size)
    bias: np.ndarray  # (labels,)
    curves: dict[str, Curve]

    def __post_init__(self) -> None:
        # float32 and contiguous, as saved: the classifier's C path reads them as such.
        for name in ("word_weights", "embedding_weights", "bias"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=np.float32))


def save(path: str | Path, artifact: Artifact) -> None:
    meta = {
        "format": FORMAT,
        "labels": list(artifact.labels),
        "embedder": artifact.embedder,
        "dims": artifact.dims,
        "embedding_scale": artifact.embedding_scale,
        "messages": artifact.messages,
        "curves": {k: [list(c.thresholds), list(c.precision), list(c.support)] for k, c in artifact.curves.items()},
    }
    with open(path, "wb") as out:  # np.savez would add ".npz" to a name without it
        np.savez_compressed(
            out,
            meta=np.array(json.dumps(meta)),
            word_weights=artifact.word_weights.astype(np.float32),
            embedding_weights=artifact.embedding_weights.astype(np.float32),
            bias=artifact.bias.astype(np.float32),
        )


def load(path: str | Path) -> Artifact:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            words, embedding, bias = data["word_weights"], data["embedding_weights"], data["bias"]
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ArtifactError(f"{path} is not a route classifier of format {FORMAT}: learn it again")
        labels = tuple(meta["labels"])
        curves = {k: Curve(tuple(t), tuple(p), tuple(s)) for k, (t, p, s) in meta["curves"].items()}
        artifact = Artifact(
            str(path),
            labels,
            meta["embedder"],
            meta["dims"],
            meta["embedding_scale"],
            meta["messages"],
            words,
            embedding,
            bias,
            curves,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"cannot read the classifier {path}: {exc}") from None
    if words.shape != (artifact.dims, len(labels)) or embedding.shape[0] != len(labels) or bias.shape != (len(labels),):
        raise ArtifactError(f"{path} is damaged: its weights do not match its {len(labels)} routes")
    return artifact
