"""Which models may serve one request: those with every capability it needs (images need `vision`,
tools `tools`, ...), that the policy's access rules let its sender use, in the regions its route and
sender are pinned to. Worked out once per request; routes, fallbacks, shifts, budget downgrades and
conversation affinity all ask the same `Eligibility`. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Generic, TypeVar

from router.core.request import Identity
from router.policy.schema import ModelSpec, Policy, Route
from router.policy.traffic import Access, Who

if TYPE_CHECKING:
    from collections.abc import Callable

C = TypeVar("C")  # a route's compiled condition, whatever the caller compiles it to
NEED_WORDS = {
    "vision": "images (vision)",
    "audio": "audio",
    "files": "files",
    "tools": "tools",
    "json": "JSON output (json)",
    "json_schema": "schema-following JSON output (json_schema)",
    "reasoning": "reasoning controls (reasoning)",
}


def who_matches(who: Who, identity: Identity) -> bool:
    """Every field `who` gives holds for the identity (a field lists the values it accepts)."""
    if who.keys and identity.key_alias not in who.keys and identity.key_hash not in who.keys:
        return False
    if who.teams and identity.team not in who.teams:
        return False
    if who.users and identity.user not in who.users:
        return False
    if who.tags and not set(who.tags) & set(identity.tags):
        return False
    return all(set(allowed) & set(identity.values(field)) for field, allowed in who.metadata.items())


def capable(spec: ModelSpec, needs: frozenset[str]) -> tuple[str, ...]:
    """The needs the model lacks, in a stable order; none when it declares no capabilities."""
    if spec.capabilities is None or not needs:
        return ()
    have = set(spec.capabilities)
    if "json_schema" in have:
        have.add("json")
    return tuple(sorted(needs - have))


@dataclass(frozen=True)
class Eligibility:
    needs: frozenset[str] = frozenset()
    only: frozenset[str] | None = None  # the policy models access rules allow; None: any
    deny: frozenset[str] = frozenset()
    regions: frozenset[str] | None = None  # the sender's regions; None: any
    rules: tuple[Access, ...] = ()  # the access rules that apply to the sender
    route_regions: frozenset[str] | None = None  # the regions of the route it takes; None: any

    @property
    def restricted(self) -> bool:
        return bool(self.needs) or self.only is not None or bool(self.deny) or self.pinned

    @property
    def pinned(self) -> bool:
        return self.regions is not None or self.route_regions is not None

    @property
    def key(self) -> tuple:
        """Equal for eligibilities that allow the same models for the same reasons (the access
        rules, built once per policy, by identity: they hold unhashable metadata)."""
        return self.needs, self.only, self.deny, self.regions, self.route_regions, tuple(map(id, self.rules))

    def on_route(self, regions: tuple[str, ...]) -> Eligibility:
        """For a route pinned to `regions` (none: any), in place of the route it was for before."""
        pinned = frozenset(regions) or None
        return self if pinned == self.route_regions else replace(self, route_regions=pinned)

    def why_not(self, name: str, spec: ModelSpec) -> tuple[int, str] | None:
        """(status, reason) when the model may not serve the request: 400 for a capability it
        lacks, 403 for what the access rules or regions forbid; None when it may."""
        missing = capable(spec, self.needs)
        if missing:
            return 400, f"'{name}' cannot take {', '.join(NEED_WORDS[m] for m in missing)}"
        if name in self.deny or (self.only is not None and name not in self.only):
            rule = self.denied_by(name)
            return 403, f"access rule '{rule.name if rule else ''}' does not let this key use '{name}'"
        for regions in (self.regions, self.route_regions):
            if regions is not None and not regions.intersection(spec.region):
                where = f"region {', '.join(spec.region)}" if spec.region else "no declared region"
                return 403, f"'{name}' runs in {where}, not in {' or '.join(sorted(regions))}"
        return None

    def region_for(self, spec: ModelSpec) -> str | None:
        """The one region a model with deployments in several must serve this request from (LiteLLM's
        `allowed_model_region` takes one); None when any of its deployments may."""
        if len(spec.region) < 2:
            return None
        allowed = [r for r in spec.region if all(p is None or r in p for p in (self.regions, self.route_regions))]
        return allowed[0] if len(allowed) < len(spec.region) else None

    def allows(self, name: str, spec: ModelSpec) -> bool:
        return self.why_not(name, spec) is None

    def denied_by(self, name: str) -> Access | None:
        """The first access rule that keeps the sender from `name` (for how to answer a request naming it)."""
        return next((r for r in self.rules if name in r.deny or (r.models and name not in r.models)), None)


ANYONE = Eligibility()  # a request that needs nothing from a sender no rule limits
# A route's models a request may use, (status, why) for each it may not, its eligibility on the route.
Chain = tuple[tuple[str, ...], tuple[tuple[int, str], ...], Eligibility]


def canonical_rules(policy: Policy, canonical: Callable[[str], str]) -> tuple[Access, ...]:
    """The policy's access rules with every model named by its name, not an alias: once per policy."""
    return tuple(
        rule.model_copy(update={"models": tuple(map(canonical, rule.models)), "deny": tuple(map(canonical, rule.deny))})
        for rule in policy.access
    )


def eligibility(rules: tuple[Access, ...], identity: Identity, needs: frozenset[str]) -> Eligibility:
    """The request's eligibility: its needs, and the access rules (from `canonical_rules`) whose
    `who` matches its sender."""
    applying = tuple(rule for rule in rules if who_matches(rule.who, identity))
    if not applying:
        return Eligibility(needs) if needs else ANYONE
    only: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    deny: set[str] = set()
    for rule in applying:
        if rule.models:
            only = frozenset(rule.models) if only is None else only & frozenset(rule.models)
        if rule.regions:
            regions = frozenset(rule.regions) if regions is None else regions & frozenset(rule.regions)
        deny.update(rule.deny)
    return Eligibility(needs, only, frozenset(deny), regions, applying)


class Usable(Generic[C]):
    """Which models of each route's chain requests of one eligibility may use: every model's
    verdict worked out once per set of route regions, every route's chain once. `routes` pairs each
    route with its compiled condition; `chains` gives each route's model and fallbacks by name."""

    __slots__ = ("chains", "eligible", "models", "open", "restricted", "routes", "verdicts")

    def __init__(
        self,
        routes: tuple[tuple[Route, C], ...],
        chains: Mapping[str, tuple[str, ...]],
        models: Mapping[str, ModelSpec],
        eligible: Eligibility,
    ):
        self.chains = chains
        self.models = models
        self.eligible = eligible.on_route(())  # the sender's, before any route's regions
        self.restricted = self.eligible.restricted
        # route regions -> model -> (status, why) it may not serve the request, or None
        self.verdicts: dict[frozenset[str] | None, dict[str, tuple[int, str] | None]] = {}
        self.routes: dict[str, Chain] = {}
        # The routes with a model the request may use, in order: the only ones whose conditions run.
        self.open = tuple(
            (position, route, condition, found)
            for position, (route, condition) in enumerate(routes)
            if (found := self.chain(route))[0]
        )

    def chain(self, route: Route) -> Chain:
        """The route's model and fallbacks the request may use, (status, why) for the others, and
        the eligibility on this route (its regions applied)."""
        found = self.routes.get(route.name)
        if found is None:
            found = self.routes[route.name] = self._chain(route)
        return found

    def _chain(self, route: Route) -> Chain:
        chain = self.chains[route.name]
        if not self.restricted:
            return chain, (), self.eligible
        allowed = self.eligible.on_route(route.regions) if route.regions else self.eligible
        verdicts = self.verdicts.get(allowed.route_regions)
        if verdicts is None:
            verdicts = self.verdicts[allowed.route_regions] = {n: allowed.why_not(n, s) for n, s in self.models.items()}
        skipped = tuple(why for name in chain if (why := verdicts[name]) is not None)
        return tuple(name for name in chain if verdicts[name] is None), skipped, allowed
