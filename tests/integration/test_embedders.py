"""The static embedder built by scripts/setup: the same word pieces as its tokenizer, unit vectors
that place a rewording near its original, a clear error for a missing or damaged model, and its C
path held to the Python one (vectors, word pieces, the shipped classifier's verdicts)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from router.cache.embedders import EmbedderUnavailable, Shared, StaticEmbedder, static_model_dir
from router.core.classify import Classifier
from router.core.native import NATIVE
from router.engine.policy_file import PolicyFile
from tests.helpers import DEFAULT, ascii_texts

TEXTS = [
    "How do I undo the last commit in git?",
    "Ünïcode café, naïve façade: résumé!",
    "東京の天気は? 北京 and Paris",
    "x = foo_bar(2+2) // snake_case & ALLCAPS; e-mail's",
    "tabs\tand\nnewlines   spaces",
]


@pytest.fixture(scope="module")
def static():
    return StaticEmbedder()


def test_pieces_match_the_tokenizer(static):
    for text in TEXTS:
        expected = static._tokenizer.encode(text, add_special_tokens=False).ids
        assert static.piece_ids(text) == expected, text


def test_vectors_are_unit_length_and_meaningful(static):
    question = static.embed("How do I undo the last commit in git?")
    reworded = static.embed("In git, how can I revert my most recent commit?")
    other = static.embed("What is the boiling point of water at sea level?")
    assert question.dtype == np.float32 and abs(float(np.linalg.norm(question)) - 1) < 1e-5
    assert float(question @ reworded) > 0.7 > float(question @ other)
    long = static.embed("word " * 5000)  # read up to 512 pieces, whatever the length
    assert abs(float(np.linalg.norm(long)) - 1) < 1e-5
    assert not np.any(static.embed(""))  # nothing to embed: a zero vector scores 0 against all


def test_a_missing_model_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(EmbedderUnavailable, match=r"missing: .*python -m router embedder build"):
        StaticEmbedder(tmp_path / "nowhere")


def test_a_damaged_model_is_one_clear_error(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(static_model_dir(), copy)
    (copy / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(EmbedderUnavailable, match="unreadable"):
        StaticEmbedder(copy)


def test_the_shared_embedder_embeds_a_text_once(static):
    shared = Shared(static)
    first = shared.embed("one question")
    assert shared.embed("one question") is first and shared.computed == 1
    shared.embed("another question")
    assert shared.computed == 2
    with pytest.raises(ValueError):
        first[0] = 1.0  # callers share the vector: nobody may change it


@pytest.mark.skipif(NATIVE is None, reason="the C module was not built")
def test_the_c_path_gives_the_python_vectors_and_pieces(static):
    fresh = StaticEmbedder()  # an empty memo: every word's pieces come from the C WordPiece
    texts = ascii_texts(150) + [" ".join(f"w{n}x{n * 7919}" for n in range(300)), "a" * 150 + " b"]
    for text in texts:
        vector, expected = fresh.embed(text), static.summed(static.piece_ids(text))
        assert vector.dtype == np.float32 and vector.shape == expected.shape
        assert np.allclose(vector, expected, atol=1e-6), text
    model = fresh._tokenizer.model
    for word, pieces in fresh._pieces.items():
        assert pieces == tuple(token.id for token in model.tokenize(word)), word
    assert len(fresh._pieces) > 1000


@pytest.mark.skipif(NATIVE is None, reason="the C module was not built")
def test_the_c_path_empties_a_full_memo(static):
    assert NATIVE is not None
    memo: dict = {}
    for n in range(10):
        NATIVE.embed_ascii(static._native, f"word{n}", memo, 512, 4096, 4)
    assert 1 <= len(memo) <= 4 and "word9" in memo


@pytest.mark.skipif(NATIVE is None, reason="the C module was not built")
def test_the_default_policys_classifier_judges_alike_on_both_paths(static):
    """Held-out prompts (ASCII and Chinese) through the shipped classifier: the C path's embedding
    and scores give the Python path's verdicts."""
    model = PolicyFile(DEFAULT).current.classifier.model
    native, python = Classifier(model), Classifier(model, native=None)
    rows = [json.loads(line) for line in (DEFAULT.parents[1] / "data/routing/heldout.jsonl").open()]
    prompts = [row["prompt"] for row in rows if "prompt" in row]  # the others are conversations
    assert any(not p.isascii() for p in prompts) and any(p.isascii() for p in prompts)
    for prompt in prompts:
        fast, slow = (
            native.verdict(prompt, static.embed(prompt)),
            python.verdict(prompt, static.summed(static.piece_ids(prompt))),
        )
        assert fast.route == slow.route and fast.probability == pytest.approx(slow.probability, abs=1e-4), prompt
