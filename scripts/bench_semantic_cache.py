#!/usr/bin/env python3
"""Semantic cache quality, embedding speed and lookup speed.

Quality, through the real response cache (the same lookup path the proxy runs: index, margin,
second stage and guard), on two sets that ship in data/bench/:
- GPTCache's pairs (`{origin, similar}`): every `origin` is stored, every `similar` asked; a hit on
  an entry with the same origin text is correct, a hit on another entry wrong.
- our own harder set (`{origin, paraphrases, near_misses}`, written for this project): every
  `origin` is stored; a paraphrase must hit its origin, a near miss (a different question in
  almost the same words: another number, entity, direction or intent) must not hit anything.
Each at the policy's settings, then over thresholds with and without the second stage.

Speed: one prompt on one thread (100 and 1K tokens), and lookups with 10K and 100K entries in one
tenant's partition, embedding excluded.

    .venv/bin/python scripts/bench_semantic_cache.py [--embedder local|minilm] [--verify]

Goal (issue 12): embedding p50 <= 1 ms, p99 <= 3 ms; on GPTCache's pairs precision >= 99 % at a hit
rate >= 80 %; lookup p50 < 2 ms at 100K entries.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from router import Identity, load_policy
from router.cache.embedders import MiniLMEmbedder, StaticEmbedder
from router.cache.index import Entry
from router.cache.rules import cache_rules
from router.cache.service import CacheRequest, ResponseCache
from router.state import open_store

ROOT = Path(__file__).resolve().parent.parent
TENANT = Identity(key_hash="bench")
PROSE = (
    "Our team runs a nightly batch job that reads the previous day's orders from the warehouse, joins them "
    "with the customer table, and writes a summary for the finance team. Since last week the job sometimes "
    "fails with a timeout after forty minutes, and nobody has changed the code. "
)


class Precomputed:
    """Vectors computed once, so a sweep does not re-embed; the embedder's own speed is timed apart."""

    def __init__(self, model, texts: list[str]):
        self.name = model.name
        unique = sorted(set(texts))
        many = getattr(model, "embed_many", None)
        if many is not None:
            vectors = np.concatenate([many(unique[i : i + 64]) for i in range(0, len(unique), 64)])
        else:
            vectors = np.stack([model.embed(t) for t in unique])
        self._vectors = dict(zip(unique, vectors))

    def embed(self, text: str) -> np.ndarray:
        return self._vectors[text]


def timing(model, text: str, runs: int) -> tuple[float, float]:
    model.embed(text)
    samples = []
    for _ in range(runs):
        begin = time.perf_counter()
        model.embed(text)
        samples.append((time.perf_counter() - begin) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def request(text: str, rule) -> CacheRequest:
    return CacheRequest("default:bench", TENANT, [{"role": "user", "content": text}], {"temperature": 0}, rule)


def answer(origin: str) -> tuple[str, dict]:
    body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": origin}}]}
    return json.dumps(body), body


def filled(embedder, origins: list[str], rule, size: int = 10_000, verifier=None) -> ResponseCache:
    cache = ResponseCache(open_store("memory"), embedder, lru_entries=size, max_vectors=size, verifier=verifier)
    for origin in origins:
        cache.save(request(origin, rule), *answer(origin))
    return cache


def served(cache: ResponseCache, question: str, rule) -> str | None:
    hit, _ = cache.lookup(request(question, rule))
    return None if hit is None else json.loads(hit.response)["choices"][0]["message"]["content"]


def score_pairs(pairs: list[dict], embedder, rule, verifier=None) -> tuple[int, int, int, int]:
    cache = filled(embedder, [p["origin"] for p in pairs], rule, verifier=verifier)
    correct = wrong = 0
    for pair in pairs:
        got = served(cache, pair["similar"], rule)
        correct += got == pair["origin"]
        wrong += got is not None and got != pair["origin"]
    return correct, wrong, len(pairs) - correct - wrong, len(pairs)


def score_hard(groups: list[dict], embedder, rule, verifier=None) -> tuple[int, int, int, int]:
    """(paraphrases served their origin, wrong answers served to paraphrases or near misses,
    paraphrases missed, paraphrases)."""
    cache = filled(embedder, [g["origin"] for g in groups], rule, verifier=verifier)
    correct = wrong = missed = 0
    for group in groups:
        for question in group["paraphrases"]:
            got = served(cache, question, rule)
            correct += got == group["origin"]
            wrong += got is not None and got != group["origin"]
            missed += got is None
        wrong += sum(served(cache, question, rule) is not None for question in group["near_misses"])
    return correct, wrong, missed, sum(len(g["paraphrases"]) for g in groups)


def row(label: str, correct: int, wrong: int, missed: int, answerable: int) -> str:
    """Precision: right answers among all served; hit rate: answers served (right or wrong) to the
    questions that have a right one cached."""
    precision = correct / (correct + wrong) if correct + wrong else 0.0
    hit_rate = (answerable - missed) / answerable
    return f"  {label:<44} {correct:>7} {wrong:>6} {missed:>6} {precision:>9.1%} {hit_rate:>9.1%}"


def curves(name: str, score, data, embedder, rule) -> None:
    print(f"\n{name}\n  {'':<44} {'correct':>7} {'wrong':>6} {'missed':>6} {'precision':>9} {'hit rate':>9}")
    label = f"policy ({rule.threshold:.2f}, margin {rule.margin}, tiebreak {rule.tiebreak})"
    print(row(label, *score(data, embedder, rule)))
    for stage in (True, False):
        for threshold in (0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90):
            variant = replace(rule, threshold=threshold, tiebreak=rule.tiebreak if stage else 0.0)
            label = f"threshold {threshold:.2f}, " + ("second stage" if stage else "no second stage")
            print(row(label, *score(data, embedder, variant)))
    for margin in (0.0, 0.01, 0.03, 0.05):
        print(row(f"margin {margin}", *score(data, embedder, replace(rule, margin=margin))))


def verified(embedder, verifier, pairs: list[dict], groups: list[dict], rule) -> None:
    """The policy's `verify: minilm`: every would-be semantic hit re-scored by the full model."""
    print(f"\nhits verified by {verifier.name} (`verify: minilm`)")
    print(f"  {'':<44} {'correct':>7} {'wrong':>6} {'missed':>6} {'precision':>9} {'hit rate':>9}")
    for threshold in (0.75, 0.80, 0.85):
        at = replace(rule, verify_threshold=threshold)
        print(row(f"GPTCache's pairs, verify_threshold {threshold:.2f}", *score_pairs(pairs, embedder, at, verifier)))
        print(row(f"our harder set, verify_threshold {threshold:.2f}", *score_hard(groups, embedder, at, verifier)))


def lookup_latency(embedder, pairs: list[dict], rule, size: int, dims: int) -> tuple[float, float]:
    """Lookups of paraphrases against `size` entries: the real origins plus random unit vectors."""
    cache = filled(embedder, [p["origin"] for p in pairs], rule, size + len(pairs))
    partition = next(iter(cache.index._partitions))
    filler = np.random.default_rng(0).standard_normal((size - len(pairs), dims)).astype(np.float32)
    filler /= np.linalg.norm(filler, axis=1, keepdims=True)
    entries = [Entry(f"filler {i}", f"filler-{i}", 1e12) for i in range(len(filler))]
    for start in range(0, len(filler), 20_000):
        cache.index.add_many(partition, filler[start : start + 20_000], entries[start : start + 20_000])
    samples = []
    for pair in pairs[:500]:
        begin = time.perf_counter()
        cache.lookup(request(pair["similar"], rule))
        samples.append((time.perf_counter() - begin) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=str(ROOT / "data" / "bench" / "gptcache_mock_data.json"))
    parser.add_argument("--hard", default=str(ROOT / "data" / "bench" / "paraphrase_hard.json"))
    parser.add_argument("--policy", default=str(ROOT / "policies" / "default.yaml"))
    parser.add_argument("--embedder", choices=["local", "minilm"], help="default: the policy's")
    parser.add_argument("--sizes", default="10000,100000", help="index sizes for the latency figures")
    parser.add_argument("--verify", action="store_true", help="also: hits verified by the full MiniLM")
    args = parser.parse_args()
    policy = load_policy(args.policy)
    rule = cache_rules(policy)["default"]
    assert policy.cache is not None
    choice = args.embedder or policy.cache.semantic.embedder
    model = MiniLMEmbedder() if choice == "minilm" else StaticEmbedder()
    pairs, groups = json.loads(Path(args.pairs).read_text()), json.loads(Path(args.hard).read_text())
    short = "How do I undo the last commit in git without losing the changes I made to my files?" * 4
    print(f"embedder {model.name}, one prompt on one thread:")
    for label, text in (("~100 tokens", short), ("~1K tokens", PROSE * 18)):
        p50, p99 = timing(model, text, 300 if choice != "minilm" else 30)
        print(f"  {label}: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    texts = [p["origin"] for p in pairs] + [p["similar"] for p in pairs]
    texts += [q for g in groups for q in [g["origin"], *g["paraphrases"], *g["near_misses"]]]
    embedder = Precomputed(model, texts)
    curves(f"GPTCache's pairs ({len(pairs)})", score_pairs, pairs, embedder, rule)
    asked = sum(len(g["paraphrases"]) + len(g["near_misses"]) for g in groups)
    curves(f"our harder set ({len(groups)} questions, {asked} asked)", score_hard, groups, embedder, rule)
    if args.verify:
        verified(embedder, Precomputed(MiniLMEmbedder(), texts), pairs, groups, rule)
    print("\nlookup latency, embedding excluded (index search + second stage + guard + record fetch):")
    dims = len(embedder.embed(pairs[0]["origin"]))
    for size in (int(s) for s in args.sizes.split(",")):
        p50, p99 = lookup_latency(embedder, pairs, rule, size, dims)
        print(f"  {size:>7} entries: p50 {p50:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
