"""Checks that relate one part of a policy to another.

They read the raw parsed data, not the validated model, so they still run (and their findings are
reported together with the schema's) when some other part of the file is broken.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from router.policy import fitness
from router.policy.fields import token_count
from router.policy.refs import Finding, duplicate_names, model_ref, name_list

EXPLICIT_ROUTE = "explicit"
_CONDITIONS = (
    "any",
    "all",
    "none",
    "regex",
    "min_tokens",
    "max_tokens",
    "code",
    "examples",
    "examples_file",
    "learned",
    "keys",
    "teams",
    "users",
    "tags",
    "metadata",
    "images",
    "audio",
    "files",
    "tools",
    "json",
    "stream",
    "min_output_tokens",
    "max_output_tokens",
    "language",
)


def check(data: object) -> list[Finding]:
    if not isinstance(data, dict):
        return []
    known = dict(_model_names(data.get("models")))
    findings = list(_name_clashes(data.get("models")))
    findings += _auto_model_clash(data.get("settings"), known)
    routes = data.get("routes")
    if isinstance(routes, list):
        findings += _route_refs(routes, known, data.get("models"))
        findings += _route_order(routes)
    budgets = data.get("budgets")
    if isinstance(budgets, list):
        route_names = {r.get("name") for r in routes if isinstance(r, dict)} if isinstance(routes, list) else set()
        findings += _budget_refs(budgets, known, route_names)
    shifts = data.get("shifts")
    if isinstance(shifts, list):
        findings += _shift_refs(shifts, known, fitness.model_regions(data.get("models")))
    findings += fitness.check(data, known)
    findings += _one_embedder(data)
    findings += _classifier_needed(data)
    return findings


def _classifier_needed(data: dict) -> Iterator[Finding]:
    routes = data.get("routes")
    if data.get("classifier") is not None or not isinstance(routes, list):
        return
    for i, route in enumerate(routes):
        when = route.get("when") if isinstance(route, dict) else None
        if isinstance(when, dict) and when.get("learned") is True:
            yield (
                ("routes", i, "when", "learned"),
                "`learned: true` needs the policy's `classifier` (python -m router learn)",
            )


def _one_embedder(data: dict) -> Iterator[Finding]:
    """Routes and the semantic cache embed a request once, with one model: they must name the same."""
    routes, cache, settings = data.get("routes"), data.get("cache"), data.get("settings")
    routes = routes if isinstance(routes, list) else []
    semantic_routes = any(isinstance(r, dict) and _by_meaning(r.get("when")) for r in routes)
    cache = cache if isinstance(cache, dict) else {}
    semantic = cache.get("semantic")
    semantic = semantic if isinstance(semantic, dict) else {}
    settings = settings if isinstance(settings, dict) else {}
    if not semantic_routes or not cache or semantic.get("enabled") is False:
        return
    routing, cached = settings.get("embedder", "local"), semantic.get("embedder", "local")
    if cached != routing:
        yield (
            ("cache", "semantic", "embedder"),
            f"the semantic cache's embedder '{cached}' differs from the one routes use "
            f"(settings.embedder '{routing}'): a request is embedded once, by one model; name the same in both",
        )


def _is_semantic(when: object) -> bool:
    return isinstance(when, dict) and ("examples" in when or "examples_file" in when)


def _by_meaning(when: object) -> bool:
    return _is_semantic(when) or (isinstance(when, dict) and when.get("learned") is True)


def target_refs(data: object, source: str, groups: tuple[str, ...]) -> list[Finding]:
    """Every model's target must be a model group of the proxy (a wildcard group such as
    `openai/*` serves what it matches): a typo would otherwise fail each request on its route."""
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not groups:
        return []
    findings: list[Finding] = []
    for name, spec in models.items():
        target = spec.get("target") if isinstance(spec, dict) else None
        if isinstance(target, str) and not any(fnmatchcase(target, group) for group in groups):
            shown = ", ".join(groups[:12]) + (", ..." if len(groups) > 12 else "")
            findings.append((("models", name, "target"), f"'{target}' is not a model group of {source} ({shown})"))
    return findings


def _shift_refs(shifts: list, known: dict[str, str], regions: set) -> Iterator[Finding]:
    named = [{"name": s.get("name") or _default_shift_name(s)} if isinstance(s, dict) else None for s in shifts]
    yield from duplicate_names(named, "shifts", "shift")
    for i, shift in enumerate(shifts):
        if not isinstance(shift, dict):
            continue
        watch = shift.get("watch")
        yield from model_ref(watch, ("shifts", i, "watch"), known)
        yield from fitness.region_refs(shift.get("region"), ("shifts", i, "region"), regions)
        for path, ref in name_list(shift.get("to"), ("shifts", i, "to")):
            yield from model_ref(ref, path, known)
            if isinstance(ref, str) and ref in known and known[ref] == known.get(str(watch)):
                yield path, f"'{ref}' is the watched model itself"


def _default_shift_name(shift: dict) -> str | None:
    when = shift.get("when")
    metric = next((k for k in when if k not in ("window", "min_samples")), None) if isinstance(when, dict) else None
    watched = shift.get("watch") or f"region-{shift.get('region')}"
    return f"{watched}-{metric}" if metric else None


def _budget_refs(budgets: list, known: dict[str, str], route_names: set) -> Iterator[Finding]:
    yield from duplicate_names(budgets, "budgets", "budget")
    for i, budget in enumerate(budgets):
        if not isinstance(budget, dict):
            continue
        for field in ("to", "models"):
            for path, ref in name_list(budget.get(field), ("budgets", i, field)):
                yield from model_ref(ref, path, known)
        for path, ref in name_list(budget.get("routes"), ("budgets", i, "routes")):
            if isinstance(ref, str) and ref not in route_names:
                yield path, f"unknown route '{ref}'"


def _model_names(models: object) -> Iterator[tuple[str, str]]:
    """(name or alias, model it names) for every model and alias in the registry."""
    if not isinstance(models, dict):
        return
    for name, spec in models.items():
        yield name, name
        aliases = spec.get("aliases") if isinstance(spec, dict) else None
        for alias in aliases if isinstance(aliases, list) else ():
            if isinstance(alias, str):
                yield alias, name


def _name_clashes(models: object) -> Iterator[Finding]:
    if not isinstance(models, dict):
        return
    owner: dict[str, str] = {name: name for name in models}
    for name, spec in models.items():
        aliases = spec.get("aliases") if isinstance(spec, dict) else None
        for i, alias in enumerate(aliases if isinstance(aliases, list) else ()):
            if not isinstance(alias, str):
                continue
            if alias in owner:
                other = owner[alias]
                what = "a model" if other == alias else f"an alias of model '{other}'"
                yield ("models", name, "aliases", i), f"alias '{alias}' is already {what}"
            else:
                owner[alias] = name


def _auto_model_clash(settings: object, known: dict[str, str]) -> Iterator[Finding]:
    auto = settings.get("auto_model", "auto") if isinstance(settings, dict) else "auto"
    if isinstance(auto, str) and auto in known:
        yield ("settings", "auto_model"), f"'{auto}' is also a model name or alias; requests for it would be ambiguous"


def _route_refs(routes: list, known: dict[str, str], models: object) -> Iterator[Finding]:
    yield from duplicate_names(routes, "routes", "route")
    for i, route in enumerate(routes):
        if not isinstance(route, dict):
            continue
        if route.get("name") == EXPLICIT_ROUTE:
            yield ("routes", i, "name"), f"'{EXPLICIT_ROUTE}' is reserved for requests that name a model themselves"
        yield from model_ref(route.get("use"), ("routes", i, "use"), known)
        fallbacks = route.get("fallbacks")
        fallbacks = fallbacks if isinstance(fallbacks, list) else []
        for j, fallback in enumerate(fallbacks):
            path = ("routes", i, "fallbacks", j)
            yield from model_ref(fallback, path, known)
            if isinstance(fallback, str) and fallback in known:
                if known[fallback] == known.get(str(route.get("use"))):
                    yield path, f"'{fallback}' is the model the route already uses"
                elif [known.get(f) for f in fallbacks[:j] if isinstance(f, str)].count(known[fallback]):
                    yield path, f"'{fallback}' is listed twice"
        yield from _when_checks(route.get("when"), ("routes", i, "when"))
        yield from _truncation_ref(route, ("routes", i, "on_truncation"), known, models)


def _truncation_ref(route: dict, path: tuple, known: dict[str, str], models: object) -> Iterator[Finding]:
    larger = route.get("on_truncation")
    if larger is None:
        return
    yield from model_ref(larger, path, known)
    use = route.get("use")
    if not (isinstance(larger, str) and larger in known and isinstance(use, str) and use in known):
        return
    specs = [models.get(known[m]) if isinstance(models, dict) else None for m in (use, larger)]
    first, second = (token_count(spec.get("context")) if isinstance(spec, dict) else None for spec in specs)
    if isinstance(first, int) and isinstance(second, int) and second <= first:
        yield (
            path,
            (
                f"'{larger}' holds {second} tokens, no more than '{use}' ({first}): "
                "a truncated answer must be retried on a larger model"
            ),
        )


def _when_checks(when: object, path: tuple) -> Iterator[Finding]:
    if not isinstance(when, dict):
        return
    if not any(key in when for key in _CONDITIONS):
        yield path, "`when` has no condition; leave `when` out for a route that matches every request"
    if "min_precision" in when and when.get("learned") is not True:
        yield (
            path + ("min_precision",),
            "`min_precision` is the precision of the learned classifier: it needs `learned: true`",
        )
    if "similarity" in when and not _is_semantic(when):
        yield path + ("similarity",), "`similarity` needs `examples` or `examples_file` to compare the request with"
    low, high = token_count(when.get("min_tokens")), token_count(when.get("max_tokens"))
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield path + ("min_tokens",), f"min_tokens {low} is above max_tokens {high}: the route can never match"


def _route_order(routes: list) -> Iterator[Finding]:
    catch_all = next((i for i, r in enumerate(routes) if isinstance(r, dict) and r.get("when") is None), None)
    if catch_all is None:
        yield ("routes", len(routes) - 1), "the last route must have no `when`, so that every request has a route"
        return
    for j in range(catch_all + 1, len(routes)):
        yield ("routes", j), f"unreachable: routes[{catch_all}] has no `when` and matches every request first"
