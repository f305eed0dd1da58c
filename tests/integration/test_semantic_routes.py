"""Routes that match by meaning: a request compared with a route's example utterances through the
real static embedder, ties settled by score and margin, example files read at load time, and one
embedding a request shared with the response cache."""

from __future__ import annotations

import pytest

from router import CompiledPolicy, Identity, PolicyError, PolicyFile, parse_policy, route_body
from router.cache.embedders import Shared, StaticEmbedder
from router.engine.runtime import build_runtime

MODELS = """
version: 1
models:
  cheap: {target: g-cheap, context: 8k}
  thinker: {target: g-think, context: 8k}
  writer: {target: g-write, context: 8k}
state: {backend: memory}
"""
POLICY = (
    MODELS
    + """
routes:
  - name: maths
    when: {examples: ["Prove that the square root of 2 is irrational.", "Solve the equation 3x + 7 = 22."]}
    use: thinker
  - name: writing
    when: {examples: ["Write a poem about the sea at night.", "Write a bedtime story about a dragon."]}
    use: writer
  - {name: default, use: cheap}
"""
)


@pytest.fixture(scope="module")
def embedder() -> Shared:
    return Shared(StaticEmbedder())


def decide(compiled: CompiledPolicy, text: str):
    return route_body(compiled, {"model": "auto", "messages": [{"role": "user", "content": text}]})


def test_a_paraphrase_goes_to_the_route_of_the_example_it_is_like(embedder):
    compiled = CompiledPolicy(parse_policy(POLICY), embedder)
    decision = decide(compiled, "Show that the square root of 3 is irrational.")
    assert decision.route == "maths" and decision.target == "g-think"
    assert decision.reasons[0].startswith("like example 'Prove that the square root of 2 is irrational.' (0.")
    assert decide(compiled, "Write a poem about the mountains in winter.").route == "writing"
    assert decide(compiled, "What time does the shop open?").route == "default"


def test_without_an_embedder_routes_by_meaning_stand_aside(embedder):
    compiled = CompiledPolicy(parse_policy(POLICY))
    assert decide(compiled, "Prove that the square root of 2 is irrational.").route == "default"


def test_a_later_route_that_is_clearly_closer_takes_the_request(embedder):
    text = "Write a poem about the sea at night."
    loose = POLICY.replace("version: 1", "version: 1\nsettings: {similarity: 0.05}")
    decision = decide(CompiledPolicy(parse_policy(loose), embedder), text)
    # maths matches first at this low similarity, but writing holds the very text (1.00)
    assert decision.route == "writing" and "closer than route 'maths'" in decision.reasons[-1]
    wide = loose.replace("similarity: 0.05", "similarity: 0.05, semantic_margin: 0.99")
    assert decide(CompiledPolicy(parse_policy(wide), embedder), text).route == "maths"  # within the margin: order


def test_every_other_condition_of_the_route_must_hold_too(embedder):
    gated = POLICY.replace('when: {examples: ["Prove', 'when: {none: [python], examples: ["Prove')
    compiled = CompiledPolicy(parse_policy(gated), embedder)
    assert decide(compiled, "Prove that the square root of 2 is irrational.").route == "maths"
    assert decide(compiled, "Prove that the square root of 2 is irrational, in Python.").route == "default"


def test_examples_files_are_read_relative_to_the_policy(tmp_path, embedder):
    (tmp_path / "maths.txt").write_text("# maths\nProve that there are infinitely many primes.\n\n")
    (tmp_path / "labelled.jsonl").write_text(
        '{"prompt": "Write a limerick about a cat.", "route": "writing"}\n'
        '{"prompt": "Prove that 7 is prime.", "route": "maths"}\n'
    )
    path = tmp_path / "policy.yaml"
    path.write_text(
        MODELS
        + """
routes:
  - {name: maths, when: {examples_file: maths.txt}, use: thinker}
  - {name: writing, when: {examples: ["Write a poem."], examples_file: labelled.jsonl}, use: writer}
  - {name: default, use: cheap}
"""
    )
    policy = PolicyFile(path, embedder=embedder).current.policy
    assert policy.routes[0].when.examples == ("Prove that there are infinitely many primes.",)
    assert policy.routes[1].when.examples == ("Write a poem.", "Write a limerick about a cat.")


def test_a_bad_examples_file_names_its_file_line_and_key_path(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "Solve x + 1 = 2."}\n{"prompt": 3}\nnot json\n')
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    path = tmp_path / "policy.yaml"
    path.write_text(
        MODELS
        + """
routes:
  - {name: maths, when: {examples_file: bad.jsonl}, use: thinker}
  - {name: writing, when: {examples_file: empty.txt}, use: writer}
  - {name: other, when: {examples_file: missing.txt}, use: writer}
  - {name: default, use: cheap}
"""
    )
    with pytest.raises(PolicyError) as caught:
        PolicyFile(path)
    text = str(caught.value)
    assert f"{tmp_path / 'bad.jsonl'}:2: routes[0].when.examples_file: an examples line must be" in text
    assert f"{tmp_path / 'bad.jsonl'}:3: routes[0].when.examples_file:" in text
    assert f"{path}:11: routes[1].when.examples_file: {tmp_path / 'empty.txt'} holds no example" in text
    assert f"{path}:12: routes[2].when.examples_file: cannot read the examples file" in text


def test_contradictions_are_policy_errors():
    with pytest.raises(PolicyError) as caught:
        routes = "routes:\n  - {name: a, when: {any: [x], similarity: 0.5}, use: cheap}\n  - {name: d, use: cheap}\n"
        parse_policy(MODELS + routes)
    assert "routes[0].when.similarity: `similarity` needs `examples`" in str(caught.value)
    mismatch = POLICY + "cache: {semantic: {embedder: minilm}}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(mismatch)
    assert "cache.semantic.embedder: the semantic cache's embedder 'minilm' differs" in str(caught.value)


def test_routing_and_the_cache_share_one_embedding_of_a_request(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("state: {backend: memory}", "state: {backend: memory}\ncache: {exact: {ttl: 1h}}"))
    runtime = build_runtime(PolicyFile(path), lambda name: StaticEmbedder())
    try:
        assert runtime.cache is not None and runtime.cache.embedder is not None
        embedder = runtime.cache.embedder
        assert runtime.pipeline.policy.current.embedder is embedder  # one embedder for both
        before = embedder.computed
        body = {"model": "auto", "temperature": 0, "messages": [{"role": "user", "content": "Solve 2x = 10."}]}
        admitted = runtime.pipeline.prepare(body, Identity(key_hash="k"))
        assert admitted.decision.route == "maths" and admitted.record["cache"] == "miss"
        assert embedder.computed - before == 1  # routed and looked up with one embedding
    finally:
        runtime.close()
