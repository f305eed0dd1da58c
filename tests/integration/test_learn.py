"""`python -m router learn`: a classifier fitted from labelled prompts, its held-out report, and the
loader's checks of the artifact a policy names (file, line and key path in every problem)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from router import CompiledPolicy, Identity, PolicyError, PolicyFile, load_policy, route_body
from router.cache.embedders import Shared, StaticEmbedder
from router.engine.runtime import build_runtime
from router.ops.cli import main
from router.policy import artifact
from router.policy.artifact import Curve

ROUTES = {
    "maths": [
        "Prove that there are infinitely many primes.",
        "Solve 3x + 7 = 22.",
        "What is the derivative of x^2?",
        "Integrate sin x from 0 to pi.",
        "Show that the sum of two odd numbers is even.",
        "Factor x^2 - 9.",
        "证明根号2是无理数。",
        "解方程 x + 3 = 5。",
    ],
    "chat": [
        "Hi, how are you today?",
        "Good morning!",
        "Thanks, that was helpful.",
        "Tell me a joke.",
        "I had a long day at work.",
        "See you tomorrow!",
        "你好，今天怎么样？",
        "谢谢你！",
    ],
}
POLICY = """
version: 1
models:
  cheap: {target: g-cheap, context: 8k}
  thinker: {target: g-think, context: 8k}
routes:
  - {name: maths, when: %(when)s, use: thinker}
  - {name: chat, use: cheap}
classifier: {path: %(path)s}
state: {backend: memory}
"""


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("learn")
    labelled = folder / "labelled.jsonl"
    lines = [json.dumps({"prompt": p, "route": r}) for r, prompts in ROUTES.items() for p in prompts]
    labelled.write_text("\n".join([*lines, "{broken"]) + "\n")
    code, out = run("learn", str(labelled), "--out", str(folder / "model.npz"), "--holdout", "0.25")
    assert code == 0, out
    assert "held-out split: 4 prompts" in out and "maths" in out and "precision" in out
    assert "wrote " in out and "routes chat, maths; embedder local" in out
    return folder / "model.npz"


def policy(tmp_path: Path, model: Path, when: str = "{learned: true}") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % {"when": when, "path": model})
    return path


def test_the_learned_classifier_routes_prompts_it_was_not_trained_on(learned, tmp_path):
    compiled = CompiledPolicy(load_policy(policy(tmp_path, learned)), Shared(StaticEmbedder()))

    def route(text: str) -> str:
        return route_body(compiled, {"model": "auto", "messages": [{"role": "user", "content": text}]}).route

    assert route("Prove that the square root of 3 is irrational.") == "maths"
    assert route("Hello there, nice to meet you!") == "chat"


class Narrower:
    """The static embedder with its vectors cut to 128 dimensions: what a model file rebuilt with
    other dimensions gives under the same name."""

    name = "local"

    def __init__(self):
        self.inner = StaticEmbedder()

    def embed(self, text: str) -> np.ndarray:
        vector = self.inner.embed(text)[:128]
        return vector / (np.linalg.norm(vector) or 1.0)


def test_a_classifier_learned_on_other_dimensions_stands_aside_and_says_so(learned, tmp_path, caplog):
    path = policy(tmp_path, learned)
    compiled = CompiledPolicy(load_policy(path), Shared(Narrower()))
    body = {"model": "auto", "messages": [{"role": "user", "content": "Prove that there are infinitely many primes."}]}
    assert route_body(compiled, body).route == "chat"  # the learned route stands aside, no error
    runtime = build_runtime(PolicyFile(path), lambda name: Narrower())
    try:
        assert runtime.pipeline.prepare(body, Identity(key_hash="k")).decision.route == "chat"
    finally:
        runtime.close()
    assert "the classifier was learned on 256-dimensional embeddings, and embedder 'local' gives 128" in caplog.text


def test_min_precision_takes_the_lowest_threshold_that_holds_it(learned, tmp_path):
    curve = Curve((0.0, 0.5, 0.9), (0.8, 0.96, 1.0), (40, 20, 3))  # 3 prompts at 0.9: too few to count
    assert curve.threshold_for(0.95) == 0.5 and curve.threshold_for(0.8) == 0.0 and curve.threshold_for(0.99) is None
    model = artifact.load(learned)
    doubtful = replace(
        model, curves={k: replace(c, precision=(0.5,) * len(c.precision)) for k, c in model.curves.items()}
    )
    artifact.save(tmp_path / "doubtful.npz", doubtful)
    with pytest.raises(PolicyError) as caught:
        load_policy(policy(tmp_path, tmp_path / "doubtful.npz", "{learned: true, min_precision: 0.9}"))
    message = str(caught.value)
    assert "policy.yaml:7: routes[0].when.min_precision: the classifier does not reach 90.0% precision" in message
    assert "50.0% at its most confident (p >= " in message
    assert curve.most_confident() == (0.5, 0.96, 20)  # the 3 prompts at 0.9 are too few to say


def test_the_artifact_is_checked_against_the_policy(learned, tmp_path):
    path = tmp_path / "policy.yaml"
    text = POLICY % {"when": "{learned: true}", "path": learned}
    path.write_text(text.replace("name: chat", "name: smalltalk").replace("embedder", "x"))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert f"{path}:9: classifier.path: it names routes the policy does not have: chat" in str(caught.value)
    path.write_text(text.replace("version: 1", "version: 1\nsettings: {embedder: minilm}"))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert "classifier.path: learned with embedder 'local', but settings.embedder is 'minilm'" in str(caught.value)


def test_a_missing_or_damaged_artifact_names_the_key(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a classifier")
    for name in ("absent.npz", "junk.npz"):
        with pytest.raises(PolicyError) as caught:
            load_policy(policy(tmp_path, tmp_path / name))
        assert "policy.yaml:9: classifier.path: cannot read the classifier" in str(caught.value)


def test_learned_routes_need_a_classifier(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text((POLICY % {"when": "{learned: true}", "path": "x"}).replace("classifier: {path: x}\n", ""))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert "routes[0].when.learned: `learned: true` needs the policy's `classifier`" in str(caught.value)


def test_learning_needs_enough_prompts_a_route(tmp_path, capsys):
    labelled = tmp_path / "few.jsonl"
    labelled.write_text('{"prompt": "hi", "route": "chat"}\n{"prompt": "prove it", "route": "maths"}\n')
    code, _ = run("learn", str(labelled), "--out", str(tmp_path / "m.npz"))
    assert code == 2 and "5 prompts each at least" in capsys.readouterr().err
