"""Each route's cache settings, resolved once per policy from the `cache` section and the route's own switches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from router.cache.keys import is_deterministic
from router.policy.crossref import EXPLICIT_ROUTE
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
    tiebreak: float
    verify_threshold: float  # the second model's score a semantic hit needs, when there is one

    @property
    def enabled(self) -> bool:
        return self.exact or self.semantic

    @property
    def record_ttl(self) -> float:
        """How long a stored answer must live: the longest tier that may serve it."""
        return max(self.exact_ttl if self.exact else 0.0, self.semantic_ttl if self.semantic else 0.0)


class RuleBook:
    """The rule a request gets under a policy, the rules rebuilt when the policy changes."""

    __slots__ = ("_built",)

    def __init__(self) -> None:
        self._built: tuple[Policy | None, dict[str, CacheRule]] = (None, {})  # one tuple: swapped whole

    def rule(self, policy: Policy, route: str, params: Mapping) -> CacheRule | None:
        """None when the request may not use the cache: its route has no cache, or it is not
        deterministic and the policy caches only deterministic requests."""
        if self._built[0] is not policy:
            self._built = (policy, cache_rules(policy))
        rule = self._built[1].get(route)
        if rule is None or (rule.deterministic_only and not is_deterministic(params)):
            return None
        return rule


def cache_rules(policy: Policy) -> dict[str, CacheRule]:
    """Route name -> rule; requests naming a model themselves use the `explicit` entry."""
    if policy.cache is None:
        return {}
    rules = {route.name: _rule(policy.cache, route) for route in policy.routes}
    rules[EXPLICIT_ROUTE] = _rule(policy.cache, None)
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
        tiebreak=cache.semantic.tiebreak,
        verify_threshold=cache.semantic.verify_threshold,
    )
