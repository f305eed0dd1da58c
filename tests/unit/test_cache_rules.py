"""Per-route cache rules from the policy's `cache` section and the routes' own switches."""

from __future__ import annotations

from router import parse_policy
from router.cache.rules import cache_rules

POLICY = """\
version: 1
models:
  m: {target: g, context: 8k}
routes:
  - {name: plain, when: {any: [plain]}, use: m}
  - {name: no-semantic, when: {any: [exact]}, use: m, cache: {semantic: false}}
  - {name: strict, when: {any: [strict]}, use: m, cache: {threshold: 0.95}}
  - {name: never, when: {any: [never]}, use: m, cache: {enabled: false}}
  - {name: default, use: m}
cache:
  exact: {ttl: 10m, scope: team}
  semantic: {threshold: 0.85, ttl: 2h}
"""


def test_route_switches_override_the_section():
    rules = cache_rules(parse_policy(POLICY, env={}))
    assert rules["plain"].exact and rules["plain"].semantic and rules["plain"].threshold == 0.85
    assert (
        rules["plain"].exact_ttl == 600 and rules["plain"].exact_scope == "team" and rules["plain"].semantic_ttl == 7200
    )
    assert rules["no-semantic"].exact and not rules["no-semantic"].semantic
    assert rules["strict"].threshold == 0.95
    assert "never" not in rules
    assert rules["explicit"].semantic  # requests naming a model use the section as written
    assert rules["plain"].record_ttl == 7200


def test_no_cache_section_means_no_cache():
    assert cache_rules(parse_policy(POLICY.split("cache:\n  exact")[0], env={})) == {}
