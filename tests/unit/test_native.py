"""The C module (router/core/_native.c) against the Python code it stands in for: the same hashed
features and the same linear scores on ASCII text of every kind, Python for other text, and clear
errors for arguments it cannot read. The static embedder's C path: tests/integration/test_embedders.py."""

from __future__ import annotations

import numpy as np
import pytest

from router.core.classify import Classifier
from router.core.features import MAX_CHARS, hashed, python_hashed
from router.core.native import NATIVE
from router.policy.artifact import Artifact
from tests.helpers import ascii_texts


def test_the_c_module_is_built():
    assert NATIVE is not None, "router/core/_native.c was not built: `pip install -e .` needs a C compiler"


@pytest.mark.skipif(NATIVE is None, reason="the C module was not built")
def test_hashed_features_are_the_python_ones():
    for text in ascii_texts():
        buckets, weights = hashed(text, 65536)
        expected_buckets, expected_weights = python_hashed(text, 65536)
        assert buckets == expected_buckets, text
        assert weights == pytest.approx(expected_weights, rel=1e-12, abs=1e-15), text
    assert len(max(ascii_texts(), key=len)) > MAX_CHARS


def test_text_that_is_not_ascii_goes_through_python():
    text = "naïve café: 北京的天气 and Paris"
    assert hashed(text, 4096) == python_hashed(text, 4096)
    if NATIVE is not None:
        with pytest.raises(ValueError, match="ASCII"):
            NATIVE.hashed_ascii(text, 4096, MAX_CHARS)


def artifact(dims: int = 512, labels: int = 5, size: int = 32, seed: int = 3) -> Artifact:
    rng = np.random.default_rng(seed)
    return Artifact(
        "test",
        tuple(f"route{i}" for i in range(labels)),
        "local",
        dims,
        0.7,
        "user",
        rng.normal(size=(dims, labels)),  # float64: the artifact keeps float32, as it is saved
        rng.normal(size=(labels, size)),
        rng.normal(size=labels),
        {},
    )


@pytest.mark.skipif(NATIVE is None, reason="the C module was not built")
def test_linear_scores_are_the_python_ones():
    model = artifact()
    assert model.word_weights.dtype == np.float32
    native, python = Classifier(model), Classifier(model, native=None)
    rng = np.random.default_rng(5)
    for text in [*ascii_texts(50), "naïve café: 北京的天气 and Paris"]:  # the last hashed in Python, scored in C
        vector = rng.normal(size=32).astype(np.float32)
        assert native.scores(text, vector) == pytest.approx(python.scores(text, vector), rel=1e-5, abs=1e-5)
        assert native.verdict(text, vector).route == python.verdict(text, vector).route
    vector = rng.normal(size=32)  # not float32: the Python path
    assert native.scores("text", vector) == pytest.approx(python.scores("text", vector), rel=1e-5, abs=1e-5)


@pytest.mark.skipif(NATIVE is None, reason="the C module was not built")
def test_arguments_it_cannot_read_are_clear_errors():
    assert NATIVE is not None
    model = artifact()
    weights = NATIVE.linear_model(model.embedding_weights, model.bias, model.word_weights, 0.7)
    vector = np.zeros(32, dtype=np.float32)
    with pytest.raises(ValueError, match="does not fit"):
        NATIVE.scores(weights, np.zeros(31, dtype=np.float32), [], [])
    with pytest.raises(TypeError, match="float32"):
        NATIVE.scores(weights, vector.astype(np.float64), [], [])
    with pytest.raises(IndexError, match="outside"):
        NATIVE.scores(weights, vector, [model.dims], [1.0])
    with pytest.raises(ValueError, match="differ"):
        NATIVE.scores(weights, vector, [1, 2], [1.0])
    with pytest.raises(ValueError, match="do not fit"):
        NATIVE.linear_model(model.embedding_weights, model.bias[:3], model.word_weights, 0.7)
    with pytest.raises(ValueError, match="incorrect name"):  # a capsule of another kind
        NATIVE.scores(NATIVE.static_model({"a": 0}, 0, 100, np.zeros((1, 4), np.float32)), vector, [], [])
    with pytest.raises(ValueError, match="positive"):
        NATIVE.hashed_ascii("text", 0, MAX_CHARS)
