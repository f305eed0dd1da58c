"""The response cache over real stores with the real default (static) embedder."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from router import Identity
from router.cache.embedders import Shared, StaticEmbedder
from router.cache.rules import CacheRule
from router.cache.service import CacheRequest, ResponseCache
from router.state import open_store

RULE = CacheRule(
    exact=True,
    semantic=True,
    deterministic_only=True,
    exact_ttl=60,
    exact_scope="key",
    semantic_ttl=60,
    semantic_scope="key",
    threshold=0.7,
    margin=0.02,
    tiebreak=0.1,
    verify_threshold=0.8,
)
ALICE, BOB = Identity(key_hash="alice", team="blue"), Identity(key_hash="bob", team="blue")


@pytest.fixture(scope="module")
def embedder():
    return StaticEmbedder()


def ask(text: str, who: Identity = ALICE, rule: CacheRule = RULE, history: list | None = None) -> CacheRequest:
    messages = (history or []) + [{"role": "user", "content": text}]
    return CacheRequest("default:flash", who, messages, {"temperature": 0}, rule)


def answer(text: str, finish: str = "stop") -> tuple[str, dict]:
    response = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3},
    }
    return json.dumps(response), response


def make(embedder, store=None) -> ResponseCache:
    return ResponseCache(store or open_store("memory"), embedder, lru_entries=100, max_vectors=1000)


def test_a_miss_is_embedded_once_and_its_store_reuses_the_vector(embedder):
    shared = Shared(embedder)
    cache = make(shared)
    question = ask("What is the capital city of France?")
    key = cache.key_of(question)
    assert cache.lookup(question, key)[0] is None
    assert cache.save_pending(key, *answer("Paris"))  # by the key alone, as the adapter stores it
    assert shared.asked == 1  # the store asked for no vector: the lookup's waited for it
    assert cache.lookup(ask("Which city is the capital of France?"))[0].kind == "semantic"
    assert cache.save_pending("a key no lookup missed", *answer("Paris")) is None


def test_a_reworded_question_asked_again_is_served_without_another_search(embedder):
    shared = Shared(embedder)
    cache = make(shared)
    cache.save(ask("What is the capital city of France?"), *answer("Paris"))
    first, _ = cache.lookup(ask("Which city is the capital of France?"))
    asked = shared.asked
    again, why = cache.lookup(ask("Which city is the capital of France?"))
    assert (again.kind, again.score, again.key) == ("semantic", first.score, first.key) and why.startswith("asked")
    assert shared.asked == asked  # no embedding, no search
    stricter = CacheRule(**{**RULE.__dict__, "threshold": 0.99})
    assert cache.lookup(ask("Which city is the capital of France?", rule=stricter))[0] is None  # the rule changed
    cache.save(ask("What is the capital city of France?"), *answer("Paris, on the Seine"))
    assert "Seine" in cache.lookup(ask("Which city is the capital of France?"))[0].response  # as stored now


def test_exact_then_semantic_then_guarded(embedder):
    cache = make(embedder)
    assert cache.lookup(ask("What is the capital city of France?"))[0] is None
    assert cache.save(ask("What is the capital city of France?"), *answer("Paris"))
    hit, _ = cache.lookup(ask("What is the capital city of France?"))
    assert hit.kind == "exact" and json.loads(hit.response)["choices"][0]["message"]["content"] == "Paris"
    hit, _ = cache.lookup(ask("Which city is the capital of France?"))
    assert hit.kind == "semantic" and hit.score > 0.9 and hit.label.startswith("semantic;score=0.9")
    assert cache.lookup(ask("What is the capital city of Germany?"))[0] is None
    cache.save(ask("Is Python dynamically typed?"), *answer("Yes"))
    hit, why = cache.lookup(ask("Is Python not dynamically typed?"))  # scores ~0.97: the guard refuses it
    assert hit is None and why == "negation differs"


def test_two_plus_two_does_not_answer_three_plus_three(embedder):
    cache = make(embedder)
    cache.save(ask("What is 3+3?"), *answer("6"))
    hit, _ = cache.lookup(ask("What is 2+2?"))
    assert hit is None


def test_tenants_are_isolated_by_key(embedder):
    cache = make(embedder)
    cache.save(ask("What is the capital city of France?", ALICE), *answer("Paris"))
    assert cache.lookup(ask("What is the capital city of France?", BOB))[0] is None
    assert cache.lookup(ask("Which city is the capital of France?", BOB))[0] is None


def test_team_and_shared_scopes_share_on_purpose(embedder):
    team = CacheRule(**{**RULE.__dict__, "exact_scope": "team", "semantic_scope": "team"})
    cache = make(embedder)
    cache.save(ask("What is the capital city of France?", ALICE, team), *answer("Paris"))
    assert cache.lookup(ask("What is the capital city of France?", BOB, team))[0].kind == "exact"
    assert (
        cache.lookup(ask("What is the capital city of France?", Identity(key_hash="eve", team="red"), team))[0] is None
    )


def test_earlier_turns_must_match(embedder):
    cache = make(embedder)
    history = [{"role": "user", "content": "Let's talk about Spain."}, {"role": "assistant", "content": "Sure."}]
    cache.save(ask("What is its capital city?", history=history), *answer("Madrid"))
    other = [{"role": "user", "content": "Let's talk about Italy."}, {"role": "assistant", "content": "Sure."}]
    assert cache.lookup(ask("What is its capital city?", history=other))[0] is None
    assert cache.lookup(ask("Which city is its capital?", history=history))[0].kind == "semantic"


def test_incomplete_answers_are_not_stored(embedder):
    cache = make(embedder)
    assert not cache.save(ask("Write a long essay"), *answer("It was", finish="length"))
    assert cache.lookup(ask("Write a long essay"))[0] is None


def test_expired_entries_do_not_serve(embedder):
    short = CacheRule(**{**RULE.__dict__, "exact_ttl": 0.05, "semantic_ttl": 0.05})
    cache = make(embedder)
    cache.save(ask("What is the capital city of France?", rule=short), *answer("Paris"))
    time.sleep(0.1)
    assert cache.lookup(ask("What is the capital city of France?", rule=short))[0] is None


def test_stats_reach_the_store(embedder):
    store = open_store("memory")
    cache = make(embedder, store)
    cache.save(ask("What is the capital city of France?"), *answer("Paris"))
    cache.lookup(ask("What is the capital city of France?"))
    cache.lookup(ask("How tall is Mount Everest?"))
    cache.sync()
    assert store.incr("stats:cache:exact", 0) == 1 and store.incr("stats:cache:miss", 0) == 1


def test_two_instances_share_through_redis(embedder, redis_url):
    first, second = (
        make(embedder, open_store("redis", url=redis_url)),
        make(embedder, open_store("redis", url=redis_url)),
    )
    first.save(ask("What is the capital city of France?"), *answer("Paris"))
    assert second.lookup(ask("What is the capital city of France?"))[0].kind == "exact"
    assert second.lookup(ask("Which city is the capital of France?"))[0] is None  # not replayed yet
    assert second.sync() == 1
    assert second.lookup(ask("Which city is the capital of France?"))[0].kind == "semantic"


def test_a_redis_outage_degrades_to_this_instance(embedder, redis_server, redis_url):
    store = open_store("redis", url=redis_url)
    store.retry_after = 0.1
    cache = make(embedder, store)
    redis_server.stop()
    assert cache.lookup(ask("What is the capital city of France?"))[0] is None
    assert cache.save(ask("What is the capital city of France?"), *answer("Paris"))
    assert cache.lookup(ask("What is the capital city of France?"))[0].kind == "exact"  # the local tier
    assert cache.sync() == 0
    redis_server.start()
    time.sleep(0.15)
    cache.save(ask("How tall is Mount Everest?"), *answer("8849 m"))
    other = make(embedder, open_store("redis", url=redis_url))
    assert other.lookup(ask("How tall is Mount Everest?"))[0].kind == "exact"


def test_sqlite_entries_survive_a_restart(embedder, tmp_path):
    path = str(tmp_path / "state.db")
    make(embedder, open_store("sqlite", path=path)).save(ask("What is the capital city of France?"), *answer("Paris"))
    restarted = make(embedder, open_store("sqlite", path=path))
    assert restarted.sync() == 1
    assert restarted.lookup(ask("Which city is the capital of France?"))[0].kind == "semantic"


def test_written_behind_an_answer_serves_its_instance_at_once_and_the_others_after_the_flush(embedder, tmp_path):
    """The proxy's cache writes behind, on its writer thread: the request path only keeps the answer
    in the in-process tier."""
    path = str(tmp_path / "state.db")
    first = ResponseCache(open_store("sqlite", path=path), embedder, 100, 1000, write_behind=True)
    second = make(embedder, open_store("sqlite", path=path))
    first.save(ask("What is the capital city of France?"), *answer("Paris"))
    assert first.lookup(ask("What is the capital city of France?"))[0].kind == "exact"
    assert second.lookup(ask("What is the capital city of France?"))[0] is None  # not in the store yet
    assert first.lookup(ask("Which city is the capital of France?"))[0] is None  # nor in the vector index
    first.flush()
    assert first.lookup(ask("Which city is the capital of France?"))[0].kind == "semantic"
    assert second.lookup(ask("What is the capital city of France?"))[0].kind == "exact"
    assert second.sync() == 1 and second.lookup(ask("Which city is the capital of France?"))[0].kind == "semantic"


class OtherModel:
    """Another embedding model with another width, as a store written before an embedder change holds."""

    name = "another-model"

    def embed(self, text: str) -> np.ndarray:
        vector = np.random.default_rng(len(text)).standard_normal(384).astype(np.float32)
        return vector / np.linalg.norm(vector)


def test_entries_of_another_embedder_are_left_out_after_a_change(embedder, tmp_path):
    """A restart with a new embedder over an old store: its vectors cannot be compared with the new
    ones, so they are not replayed; lookups and stores work (they raised 'The number of vector
    dimensions doesn't match!' on every request, and the semantic tier served nothing)."""
    path = str(tmp_path / "state.db")
    make(OtherModel(), open_store("sqlite", path=path)).save(ask("What is the capital city of France?"), *answer("P"))
    changed = make(embedder, open_store("sqlite", path=path))
    assert changed.sync() == 0
    assert changed.lookup(ask("Which city is the capital of France?"))[0] is None
    assert changed.save(ask("Which city is the capital of France?"), *answer("Paris"))
    hit = changed.lookup(ask("Tell me the capital city of France."))[0]
    assert hit is not None and hit.kind == "semantic" and "Paris" in hit.response
