"""The routing decision: a pure function of a compiled policy and a request view."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from router.core.classify import Classifier, Verdict
from router.core.eligibility import ANYONE, NEED_WORDS, Eligibility, Usable, canonical_rules, capable, eligibility
from router.core.limits import check_shape
from router.core.matchers import Condition, KeywordIndex
from router.core.params import MAPPING
from router.core.request import Identity, RequestView
from router.core.semantic import Embedder, ExampleSet
from router.errors import RequestRejected
from router.policy.crossref import EXPLICIT_ROUTE
from router.policy.schema import ModelSpec, Policy, Route
from router.policy.traffic import Shift


@dataclass(frozen=True)
class Decision:
    route: str
    model: str | None  # the policy's model name; None when the request named a group the policy does not list
    target: str  # the model group (proxy) or LiteLLM model (SDK) that serves the request
    fallbacks: tuple[str, ...]  # targets to try next, in order
    reasons: tuple[str, ...]
    prompt_tokens: int
    max_output_tokens: int = 0
    shifted_from: str | None = None  # the target a shift or a provider's retry-after moved the request away from
    answers: int = 1  # the request's `n`: budgets reserve output for each answer
    eligible: Eligibility = ANYONE  # which models may serve it: every later step keeps to them

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def as_dict(self) -> dict:
        """JSON-ready: what the request needs and the access rules that applied, by name."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "eligible"}
        fields["needs"] = sorted(self.eligible.needs)
        fields["access"] = [rule.name for rule in self.eligible.rules]
        return fields


_KEPT = 4096  # senders (and needs) whose eligibility a policy keeps; then it starts afresh


class CompiledPolicy:
    """A validated policy with its matchers built, ready to decide many requests. `embedder` turns
    routes' examples and requests into vectors; without one, routes with examples never match."""

    def __init__(self, policy: Policy, embedder: Embedder | None = None):
        self.policy = policy
        self.settings = policy.settings
        self.embedder = embedder
        self.learned = policy.learned  # read on every request: a pydantic private attribute costs ~6 us a read
        self.classifier = Classifier(self.learned.model) if self.learned is not None else None
        self._names = {name: name for name in policy.models}
        for name, spec in policy.models.items():
            self._names.update((alias, name) for alias in spec.aliases)
        self._by_target: dict[str, str] = {}
        for name, spec in policy.models.items():
            self._by_target.setdefault(spec.target, name)
        self.access = canonical_rules(policy, self.canonical)
        self.routes = tuple((route, self._condition(route)) for route in policy.routes)
        self.route_by_name = {route.name: route for route in policy.routes}
        # Each route's model and fallbacks by their names, without repeats: worked out once, not per request.
        self.chains = {
            r.name: tuple(dict.fromkeys(self.canonical(m) for m in (r.use, *r.fallbacks))) for r in policy.routes
        }
        self.index = KeywordIndex(kw for _, cond in self.routes if cond for kw in cond.keywords)
        self._usable: dict[tuple, Usable] = {}
        self._eligible: dict[tuple[Identity, frozenset[str]], Eligibility] = {}

    @property
    def semantic(self) -> bool:
        """Some route matches by meaning (its examples or the classifier)."""
        return self.policy.routes_by_meaning

    def _condition(self, route: Route) -> Condition | None:
        when = route.when
        if when is None:
            return None
        examples = None
        if when.examples and self.embedder is not None:
            threshold = when.similarity or self.settings.similarity
            examples = ExampleSet.embed(when.examples, threshold, self.embedder)
        learned = self.learned
        default_output = self.settings.default_output_tokens
        if not when.learned or learned is None:
            return Condition.compile(when, examples, default_output=default_output)
        return Condition.compile(when, examples, route.name, learned.thresholds[route.name], default_output)

    def verdict(self, view: RequestView) -> Verdict | None:
        """The learned classifier's verdict on the request, once per request; None without a
        classifier, an embedder or a text."""
        classifier, embedder = self.classifier, self.embedder
        if classifier is None or embedder is None:
            return None
        model = classifier.model

        def judge() -> Verdict | None:
            vector = view.vector(model.messages, embedder)
            if vector is None or vector.shape[0] != model.embedding_weights.shape[1]:
                return None  # learned on another embedding (the runtime logs it at start-up): stand aside
            return classifier.verdict(view.text(model.messages), vector)

        return view.once("verdict", judge)

    def eligibility(self, view: RequestView) -> Eligibility:
        """Which models may serve the request (its needs, its sender's access rules), once per request
        and once per sender and needs while they keep coming."""
        key = (view.identity, view.needs)
        found = self._eligible.get(key)
        if found is None:
            if len(self._eligible) >= _KEPT:
                self._eligible.clear()
            found = self._eligible[key] = eligibility(self.access, view.identity, view.needs)
        return found

    def allows(self, eligible: Eligibility, name: str) -> bool:
        return eligible.allows(name, self.spec(name))

    def usable(self, eligible: Eligibility) -> Usable:
        """Which models of each route a request so eligible may use. Senders and needs come in few
        combinations, so the tables are kept: a pinned sender's routes cost a lookup each."""
        key = eligible.key
        table = self._usable.get(key)
        if table is None:
            if len(self._usable) >= _KEPT:
                self._usable.clear()
            table = self._usable[key] = Usable(self.routes, self.chains, self.policy.models, eligible)
        return table

    def watched(self, rule: Shift) -> list[str]:
        """The policy models a shift rule watches: its model, or every model in its region."""
        if rule.watch is not None:
            return [self.canonical(rule.watch)]
        return [name for name, spec in self.policy.models.items() if rule.region in spec.region]

    def resolve(self, name: str) -> str | None:
        """The model a name or alias refers to, or None."""
        return self._names.get(name)

    def canonical(self, name: str) -> str:
        """The model a name or alias of a validated policy refers to (every reference was checked)."""
        return self._names[name]

    def names(self) -> set[str]:
        """Every name a request may use for a policy model: its name, aliases and target."""
        return set(self._names) | set(self._by_target)

    def model_serving(self, target: str) -> str | None:
        """The policy model whose target is this model group (or LiteLLM model), or None."""
        return self._by_target.get(target)

    def spec(self, name: str) -> ModelSpec:
        return self.policy.models[self._names[name]]


def route_body(
    compiled: CompiledPolicy, body: object, identity: Identity | None = None, shape_checked: bool = False
) -> Decision:
    """Check a chat request body and decide; raises RequestRejected for a request the policy will not serve.
    `shape_checked`: the body's size and nesting were already checked against the policy's limits."""
    if isinstance(body, MAPPING) and not shape_checked:
        check_shape(body, compiled.settings.limits)
    return decide(compiled, RequestView(body, compiled.settings.max_prompt_chars, identity))


def decide(compiled: CompiledPolicy, view: RequestView) -> Decision:
    requested = view.model
    if not isinstance(requested, str) or not requested:
        raise RequestRejected(
            400, f"`model` is required: name a model, or '{compiled.settings.auto_model}' to let the policy choose"
        )
    if requested == compiled.settings.auto_model:
        return _route(compiled, view)
    eligible = compiled.eligibility(view)
    name = compiled.resolve(requested)
    if name is not None:
        reason = f"the request names model '{requested}'" + (f" (alias of '{name}')" if name != requested else "")
    elif (name := compiled.model_serving(requested)) is not None:
        # A group the policy lists is its model: priced, budgeted, held and shifted like it.
        reason = f"the request names model group '{requested}' (model '{name}')"
    else:
        _check_unlisted(compiled, requested)
        if eligible.only is not None or eligible.pinned:
            raise RequestRejected(403, f"access rules limit this key to models of the policy; '{requested}' is not one")
        return Decision(
            EXPLICIT_ROUTE,
            None,
            requested,
            (),
            (f"the request names model '{requested}'",),
            view.prompt_tokens,
            view.max_output_tokens,
            answers=view.answers,
            eligible=eligible,
        )
    name, reason = _named_allowed(compiled, eligible, name, reason)
    return Decision(
        EXPLICIT_ROUTE,
        name,
        compiled.spec(name).target,
        (),
        (reason,),
        view.prompt_tokens,
        view.max_output_tokens,
        answers=view.answers,
        eligible=eligible,
    )


def _named_allowed(compiled: CompiledPolicy, eligible: Eligibility, name: str, reason: str) -> tuple[str, str]:
    """The model a request that names `name` gets: that one, or the access rule's downgrade; raises
    RequestRejected when it may not have it (400 for a capability it lacks, 403 for access)."""
    refused = eligible.why_not(name, compiled.spec(name))
    if refused is None:
        return name, reason
    status, why = refused
    if status == 400:
        raise _capability_refusal(compiled, eligible, [why])
    rule = eligible.denied_by(name)
    if rule is not None and rule.on_deny == "downgrade" and rule.to is not None:
        to = compiled.canonical(rule.to)
        if compiled.allows(eligible, to):
            return to, f"{reason}; {why}: downgraded to '{to}'"
    raise RequestRejected(403, why)


def _capability_refusal(compiled: CompiledPolicy, eligible: Eligibility, why: list[str]) -> RequestRejected:
    """No model the request could reach has what it needs: a 400 that names the need and the
    models that have it, or a 403 when those are models the sender may not use."""
    needs = ", ".join(NEED_WORDS[n] for n in sorted(eligible.needs))
    # The models that have what it needs, and why the sender may not use each (None: it may).
    able = {
        m: eligible.why_not(m, spec) for m, spec in compiled.policy.models.items() if not capable(spec, eligible.needs)
    }
    open_to_sender = [m for m, barred in able.items() if barred is None]
    shown = "; ".join(dict.fromkeys(why))
    if able and not open_to_sender:
        barred = "; ".join(b[1] for b in able.values() if b is not None)
        return RequestRejected(403, f"the request needs {needs}: {shown}; and {barred}")
    offer = f"; models that can: {', '.join(open_to_sender)}" if open_to_sender else "; no model of this policy can"
    return RequestRejected(400, f"the request needs {needs}: {shown}{offer}")


def _check_unlisted(compiled: CompiledPolicy, requested: str) -> None:
    """A name the policy does not know would reach LiteLLM unpriced and unreserved: LiteLLM serves
    a provider-qualified name (`openai/gpt-4o`) on the proxy's own provider keys, and answers a
    comma-separated list with one call per model, billed once."""
    shown = requested if len(requested) <= 80 else requested[:77] + "..."
    if "," in requested:
        raise RequestRejected(400, f"`model` must name one model, not a list ({shown!r})")
    if compiled.settings.unlisted_models == "refuse":
        names = ", ".join(sorted(compiled.names()))
        raise RequestRejected(
            400,
            f"model {shown!r} is not in the routing policy: name '{compiled.settings.auto_model}' or one of {names}",
        )


def _route(compiled: CompiledPolicy, view: RequestView) -> Decision:
    """The first route whose conditions hold and that has a model the request may use. A route
    none of whose models may serve it (they lack what it needs, or its sender may not use them) is
    passed over before its conditions are evaluated: a sender pinned to one region skips most
    routes at the cost of a few lookups each."""
    hits: dict[str, frozenset[str]] = {}
    usable = compiled.usable(compiled.eligibility(view))
    for position, route, condition, (chain, skipped, allowed) in usable.open:
        if condition is None:
            reasons: list[str] | None = ["no earlier route matched"]
        else:
            reasons = condition.explain(view, hits, compiled.index, compiled.embedder, compiled.verdict)
        if reasons is None:
            continue
        if condition is not None and condition.semantic:
            closer, reasons = _closest(compiled, view, hits, position, reasons)
            if closer is not route:
                route = closer
                chain, skipped, allowed = usable.chain(route)
                if not chain:
                    continue
        model, fallbacks = _fit_context(compiled, route, list(chain), view, reasons)
        if skipped:
            reasons.append("skipped: " + "; ".join(dict.fromkeys(why for _, why in skipped)))
        return Decision(
            route.name,
            model,
            compiled.spec(model).target,
            tuple(compiled.spec(m).target for m in fallbacks),
            tuple(reasons),
            view.prompt_tokens,
            view.max_output_tokens,
            answers=view.answers,
            eligible=allowed,
        )
    eligible = usable.eligible
    # Every model passed over, for the answer when none is left.
    refusals = [why for route, _ in compiled.routes for why in usable.chain(route)[1]]
    if any(status == 400 for status, _ in refusals):
        raise _capability_refusal(compiled, eligible, [w for s, w in refusals if s == 400])
    raise RequestRejected(
        403, "no model this key may use serves the request: " + "; ".join(dict.fromkeys(w for _, w in refusals))
    )


def _closest(
    compiled: CompiledPolicy, view: RequestView, hits: dict[str, frozenset[str]], first: int, reasons: list[str]
) -> tuple[Route, list[str]]:
    """The first route that matched by meaning keeps the request unless a later one, its other
    conditions holding too, is closer to it by more than `settings.semantic_margin`: file order
    settles near ties, the score the rest."""
    route, condition = compiled.routes[first]
    match = condition.match(view, compiled.embedder) if condition is not None else None
    assert match is not None  # the route matched by meaning
    best, best_score = (route, reasons), match.score
    for later, other in compiled.routes[first + 1 :]:
        if other is None or not other.semantic:
            continue
        found = other.match(view, compiled.embedder)
        if found is None or found.score <= best_score + compiled.settings.semantic_margin:
            continue
        other_reasons = other.explain(view, hits, compiled.index, compiled.embedder, compiled.verdict)
        if other_reasons is not None:
            other_reasons.append(f"closer than route '{route.name}' ({match.score:.2f})")
            best, best_score = (later, other_reasons), found.score
    return best


def _fit_context(
    compiled: CompiledPolicy, route: Route, chain: list[str], view: RequestView, reasons: list[str]
) -> tuple[str, list[str]]:
    """The first model of the route's usable `chain` whose context window holds prompt plus max_tokens."""
    need = view.prompt_tokens + view.max_output_tokens
    fitting = [m for m in chain if compiled.spec(m).context >= need]
    if not fitting:
        windows = ", ".join(f"{m} {compiled.spec(m).context}" for m in chain)
        raise RequestRejected(
            400,
            f"the prompt (~{view.prompt_tokens} tokens) plus max_tokens ({view.max_output_tokens}) needs ~{need} "
            f"tokens, more than the context window of any model route '{route.name}' may use ({windows})",
        )
    if fitting[0] != chain[0]:
        reasons.append(
            f"'{chain[0]}' holds {compiled.spec(chain[0]).context} tokens, ~{need} needed: using '{fitting[0]}'"
        )
    return fitting[0], fitting[1:]


def pinned(compiled: CompiledPolicy, fresh: Decision, route: str, model: str, reason: str) -> Decision | None:
    """A later turn of a conversation on the route and model its first turn was given, instead of
    `fresh`; None when the policy no longer offers that model on that route or the model cannot hold
    this turn (the context guard decides then: `fresh` stands)."""
    spec = compiled.route_by_name.get(route)
    name = compiled.resolve(model)
    if spec is None or name is None:
        return None
    chain, _, eligible = compiled.usable(fresh.eligible).chain(spec)
    need = fresh.prompt_tokens + fresh.max_output_tokens
    if name not in chain or compiled.spec(name).context < need:
        return None
    rest = tuple(compiled.spec(m).target for m in chain if m != name and compiled.spec(m).context >= need)
    return Decision(
        route,
        name,
        compiled.spec(name).target,
        rest,
        (reason,),
        fresh.prompt_tokens,
        fresh.max_output_tokens,
        answers=fresh.answers,
        eligible=eligible,
    )
