"""Each route's cache settings, resolved once per policy from the `cache` section and the route's own switches."""

from __future__ import annotations

from dataclasses import dataclass

from router.policy.crossref import RESERVED_ROUTE
from router.policy.schema import CacheConfig, Policy, Route


@dataclass(frozen=True)
class CacheRule:
    exact: bool
    semantic: bool
    deterministic_only: bool
    exact_ttl: float
    exact_scope: str
    semantic_ttl: float
    semantic_scope: str
    threshold: float
    margin: float

    @property
    def enabled(self) -> bool:
        return self.exact or self.semantic

    @property
    def record_ttl(self) -> float:
        """How long a stored answer must live: the longest tier that may serve it."""
        return max(self.exact_ttl if self.exact else 0.0, self.semantic_ttl if self.semantic else 0.0)


def cache_rules(policy: Policy) -> dict[str, CacheRule]:
    """Route name -> rule; requests naming a model themselves use the `explicit` entry."""
    if policy.cache is None:
        return {}
    rules = {route.name: _rule(policy.cache, route) for route in policy.routes}
    rules[RESERVED_ROUTE] = _rule(policy.cache, None)
    return {name: rule for name, rule in rules.items() if rule.enabled}


def _rule(cache: CacheConfig, route: Route | None) -> CacheRule:
    own = route.cache if route is not None else None

    def pick(field: str, default):
        value = getattr(own, field) if own is not None else None
        return default if value is None else value

    on = pick("enabled", True)
    return CacheRule(
        exact=on and cache.exact.enabled and pick("exact", True),
        semantic=on and cache.semantic.enabled and pick("semantic", True),
        deterministic_only=cache.deterministic_only,
        exact_ttl=cache.exact.ttl,
        exact_scope=cache.exact.scope,
        semantic_ttl=cache.semantic.ttl,
        semantic_scope=cache.semantic.scope,
        threshold=pick("threshold", cache.semantic.threshold),
        margin=cache.semantic.margin,
    )
