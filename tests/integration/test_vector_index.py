"""The in-process vector index: partitions, duplicates, expiry and the size bound."""

from __future__ import annotations

import numpy as np

from router.cache.index import Entry, VectorIndex


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(16).astype(np.float32)
    return v / np.linalg.norm(v)


def test_search_finds_the_nearest_in_its_partition_only():
    index = VectorIndex(max_entries=100)
    index.add("p1", unit(1), Entry("one", "k1", expires=1e12))
    index.add("p1", unit(2), Entry("two", "k2", expires=1e12))
    index.add("p2", unit(3), Entry("three", "k3", expires=1e12))
    found = index.search("p1", unit(1), k=5, now=0)
    assert [e.key for _, e in found] == ["k1", "k2"] and found[0][0] > 0.99
    assert index.search("p3", unit(1), k=5, now=0) == []


def test_a_key_is_added_once_per_partition():
    index = VectorIndex(max_entries=100)
    assert index.add("p", unit(1), Entry("one", "k1", 1e12))
    assert not index.add("p", unit(1), Entry("one", "k1", 1e12))
    assert len(index) == 1


def test_expired_entries_are_not_returned():
    index = VectorIndex(max_entries=100)
    index.add("p", unit(1), Entry("one", "k1", expires=10))
    assert index.search("p", unit(1), k=1, now=11) == []


def test_the_oldest_entries_go_first_beyond_the_bound():
    index = VectorIndex(max_entries=3)
    for i in range(5):
        index.add("p" if i % 2 else "q", unit(i), Entry(str(i), f"k{i}", 1e12))
    assert len(index) == 3
    keys = {e.key for part in ("p", "q") for _, e in index.search(part, unit(0), k=10, now=0)}
    assert keys == {"k2", "k3", "k4"}
