"""Cross-reference checks of who may use what and what models can take: access rules, regions and
objectives name what exists, a route's model can serve what its `when` requires, and a model in
several regions is served per region by the proxy's deployments."""

from __future__ import annotations

from collections.abc import Iterator

from router.policy.refs import Finding, duplicate_names, model_ref, name_list

# `when` fields that say what the request holds, and the capability a model needs for it.
_WHEN_NEEDS = {"images": "vision", "audio": "audio", "files": "files", "tools": "tools", "json": "json"}


def check(data: dict, known: dict[str, str]) -> list[Finding]:
    """Access rules and regions name what exists; a route's models can serve what its `when` requires."""
    raw = data.get("models")
    models: dict = raw if isinstance(raw, dict) else {}
    regions = model_regions(models)
    findings: list[Finding] = []
    access = data.get("access")
    if isinstance(access, list):
        findings += duplicate_names(access, "access", "access rule")
        for i, rule in enumerate(access):
            if not isinstance(rule, dict):
                continue
            for field in ("models", "deny", "to"):
                for path, ref in name_list(rule.get(field), ("access", i, field)):
                    findings += model_ref(ref, path, known)
            findings += region_refs(rule.get("regions"), ("access", i, "regions"), regions)
    routes = data.get("routes")
    for i, route in enumerate(routes if isinstance(routes, list) else ()):
        if isinstance(route, dict):
            findings += _route_fitness(route, ("routes", i), models, known, regions)
    findings += _slo_refs(data.get("slos"), routes if isinstance(routes, list) else [], known)
    findings += _capture_home(data)
    return findings


def _capture_home(data: dict) -> Iterator[Finding]:
    """Captured requests go to the ledger's raw records on disk (never to the state store): there
    must be some."""
    capture, ledger, state = (data.get(k) for k in ("capture", "ledger", "state"))
    if not isinstance(capture, dict) or capture.get("prompts") is not True:
        return
    records = ledger.get("records", {}) if isinstance(ledger, dict) else {}
    if records is None:
        yield ("capture", "prompts"), "captured requests are written with the raw records: `ledger.records` is null"
    elif isinstance(state, dict) and state.get("backend") == "memory" and not (records or {}).get("path"):
        yield ("capture", "prompts"), "a memory state has no directory for the raw records: give `ledger.records.path`"


def _slo_refs(slos: object, routes: list, known: dict[str, str]) -> Iterator[Finding]:
    """Each objective names a route or a model of the policy, and no two share a name."""
    if not isinstance(slos, list):
        return
    yield from duplicate_names(slos, "slos", "objective")
    names = [r.get("name") for r in routes if isinstance(r, dict)]
    for i, slo in enumerate(slos):
        if not isinstance(slo, dict):
            continue
        yield from model_ref(slo.get("model"), ("slos", i, "model"), known)
        route = slo.get("route")
        if isinstance(route, str) and route not in names:
            yield ("slos", i, "route"), f"unknown route '{route}' (routes: {', '.join(map(str, names))})"


def model_regions(models: object) -> set:
    """The regions the policy's models declare."""
    specs = models.values() if isinstance(models, dict) else ()
    return {region for spec in specs for region in _regions_of(spec)}


def _regions_of(spec: object) -> list[str]:
    """A model's `region`: one name or a list of them."""
    region = spec.get("region") if isinstance(spec, dict) else None
    found = [region] if isinstance(region, str) else region if isinstance(region, list) else []
    return [r for r in found if isinstance(r, str)]


def region_refs(value: object, path: tuple, regions: set) -> Iterator[Finding]:
    for where, region in name_list(value, path):
        if isinstance(region, str) and region not in regions:
            declared = ", ".join(sorted(regions)) or "none: give models a `region`"
            yield where, f"unknown region '{region}' (regions of the policy's models: {declared})"


def _route_fitness(route: dict, path: tuple, models: dict, known: dict[str, str], regions: set) -> Iterator[Finding]:
    yield from region_refs(route.get("regions"), path + ("regions",), regions)
    use = route.get("use")
    spec = models.get(known.get(use)) if isinstance(use, str) and use in known else None
    if not isinstance(spec, dict):
        return
    pinned = route.get("regions")
    pinned = [pinned] if isinstance(pinned, str) else pinned if isinstance(pinned, list) else []
    if pinned and not set(pinned) & set(_regions_of(spec)):
        where = ", ".join(_regions_of(spec)) or "no region"
        yield path + ("use",), f"'{use}' runs in {where}, not in the route's {', '.join(pinned)}"
    when = route.get("when")
    capabilities = spec.get("capabilities")
    if not isinstance(when, dict) or not isinstance(capabilities, list):
        return
    have = set(capabilities) | ({"json"} if "json_schema" in capabilities else set())
    for field, need in _WHEN_NEEDS.items():
        if when.get(field) is True and need not in have:
            yield (
                path + ("use",),
                f"the route requires {field} (when.{field}: true) and '{use}' lacks the capability '{need}' "
                f"(its capabilities: {', '.join(capabilities) or 'none'})",
            )


def deployment_regions(data: object, groups) -> list[Finding]:
    """A model in several regions is served per region by LiteLLM's Router, which then sends every
    attempt of a pinned request only to deployments of that region: the Router must check regions
    (router_settings.enable_pre_call_checks), and every deployment of every regional model must
    say its region (litellm_params.region_name), one the policy gives the model. `groups`: the
    proxy config's (router.policy.loader.Groups)."""
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not any(len(_regions_of(spec)) > 1 for spec in models.values()):
        return []
    findings: list[Finding] = []
    for name, spec in models.items():
        regions, target = _regions_of(spec), spec.get("target") if isinstance(spec, dict) else None
        if not regions or target not in groups.regions:
            continue
        if len(regions) > 1 and not groups.pre_call_checks:
            findings.append(
                (
                    ("models", name, "region"),
                    f"several regions need router_settings.enable_pre_call_checks: true in {groups.source}",
                )
            )
        declared = groups.regions[target]
        if any(r not in regions for r in declared):
            shown = ", ".join(str(r) for r in declared)
            findings.append(
                (
                    ("models", name, "region"),
                    f"the deployments of '{target}' in {groups.source} give region_name {shown}: "
                    f"each must be one of {', '.join(regions)} (a multi-region policy routes by it)",
                )
            )
        missing = [r for r in regions if r not in declared]
        if len(regions) > 1 and missing:
            findings.append((("models", name, "region"), f"'{target}' has no deployment in {', '.join(missing)}"))
    return findings
