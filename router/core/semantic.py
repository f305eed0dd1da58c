"""Routing by meaning, pure: a route's example utterances as unit vectors, and how close a request's
text comes to the nearest of them. The vectors come from an embedder the caller hands in (the
engine's shared one); nothing here reads a file or a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    name: str

    def embed(self, text: str) -> np.ndarray:
        """A unit-length float32 vector."""


@dataclass(frozen=True)
class Match:
    score: float  # cosine similarity of the request's text and the example
    example: str


@dataclass(frozen=True)
class ExampleSet:
    examples: tuple[str, ...]
    vectors: np.ndarray  # one unit row an example
    threshold: float

    @classmethod
    def embed(cls, examples: tuple[str, ...], threshold: float, embedder: Embedder) -> ExampleSet:
        vectors = np.stack([embedder.embed(e) for e in examples]).astype(np.float32)
        vectors.setflags(write=False)
        return cls(examples, vectors, threshold)

    def nearest(self, vector: np.ndarray) -> Match:
        scores = self.vectors @ vector
        best = int(np.argmax(scores))
        return Match(float(scores[best]), self.examples[best])


def shown(example: str, width: int = 60) -> str:
    """An example as a reason quotes it: one line, cut to `width` characters."""
    line = " ".join(example.split())
    return line if len(line) <= width else line[: width - 3] + "..."
