"""The routing decision: a pure function of a compiled policy and a request view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from router.core.classify import Verdict, classify
from router.core.limits import check_shape
from router.core.matchers import Condition, KeywordIndex
from router.core.request import Identity, RequestView
from router.core.semantic import Embedder, ExampleSet
from router.errors import RequestRejected
from router.policy.crossref import EXPLICIT_ROUTE
from router.policy.schema import ModelSpec, Policy, Route


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

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def as_dict(self) -> dict:
        return asdict(self)


class CompiledPolicy:
    """A validated policy with its matchers built, ready to decide many requests. `embedder` turns
    routes' examples and requests into vectors; without one, routes with examples never match."""

    def __init__(self, policy: Policy, embedder: Embedder | None = None):
        self.policy = policy
        self.settings = policy.settings
        self.embedder = embedder
        self.learned = policy.learned  # read on every request: a pydantic private attribute costs ~6 us a read
        self._names = {name: name for name in policy.models}
        for name, spec in policy.models.items():
            self._names.update((alias, name) for alias in spec.aliases)
        self._by_target: dict[str, str] = {}
        for name, spec in policy.models.items():
            self._by_target.setdefault(spec.target, name)
        self.routes = tuple((route, self._condition(route)) for route in policy.routes)
        self.route_by_name = {route.name: route for route in policy.routes}
        self.index = KeywordIndex(kw for _, cond in self.routes if cond for kw in cond.keywords)

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
        if not when.learned or learned is None:
            return Condition.compile(when, examples)
        return Condition.compile(when, examples, route.name, learned.thresholds[route.name])

    def verdict(self, view: RequestView) -> Verdict | None:
        """The learned classifier's verdict on the request, once per request; None without a
        classifier, an embedder or a text."""
        learned = self.learned
        if learned is None or self.embedder is None:
            return None
        model, embedder = learned.model, self.embedder

        def judge() -> Verdict | None:
            vector = view.vector(model.messages, embedder)
            if vector is None or vector.shape[0] != model.embedding_weights.shape[1]:
                return None  # learned on another embedding (the runtime logs it at start-up): stand aside
            return classify(model, view.text(model.messages), vector)

        return view.once("verdict", judge)

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
    if isinstance(body, Mapping) and not shape_checked:
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
    name = compiled.resolve(requested)
    if name is not None:
        reason = f"the request names model '{requested}'" + (f" (alias of '{name}')" if name != requested else "")
    elif (name := compiled.model_serving(requested)) is not None:
        # A group the policy lists is its model: priced, budgeted, held and shifted like it.
        reason = f"the request names model group '{requested}' (model '{name}')"
    else:
        _check_unlisted(compiled, requested)
        return Decision(
            EXPLICIT_ROUTE,
            None,
            requested,
            (),
            (f"the request names model '{requested}'",),
            view.prompt_tokens,
            view.max_output_tokens,
            answers=view.answers,
        )
    return Decision(
        EXPLICIT_ROUTE,
        name,
        compiled.spec(name).target,
        (),
        (reason,),
        view.prompt_tokens,
        view.max_output_tokens,
        answers=view.answers,
    )


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
    hits: dict[str, frozenset[str]] = {}
    for position, (route, condition) in enumerate(compiled.routes):
        if condition is None:
            reasons: list[str] | None = ["no earlier route matched"]
        else:
            reasons = condition.explain(view, hits, compiled.index, compiled.embedder, compiled.verdict)
        if reasons is None:
            continue
        if condition is not None and condition.semantic:
            route, reasons = _closest(compiled, view, hits, position, reasons)
        model, fallbacks = _fit_context(compiled, route, view, reasons)
        targets = tuple(compiled.spec(m).target for m in fallbacks)
        return Decision(
            route.name,
            model,
            compiled.spec(model).target,
            targets,
            tuple(reasons),
            view.prompt_tokens,
            view.max_output_tokens,
            answers=view.answers,
        )
    raise AssertionError("a validated policy ends with a route that matches every request")


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
    compiled: CompiledPolicy, route: Route, view: RequestView, reasons: list[str]
) -> tuple[str, list[str]]:
    """The route's model, or its first fallback whose context window holds prompt plus max_tokens."""
    chain = list(dict.fromkeys(compiled.canonical(m) for m in (route.use, *route.fallbacks)))
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
    chain = list(dict.fromkeys(compiled.canonical(m) for m in (spec.use, *spec.fallbacks)))
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
    )
