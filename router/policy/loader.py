"""Load a policy file: parse, validate, cross-check, and report every problem at once."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import NamedTuple, TypeGuard

import yaml
from pydantic import BaseModel, ValidationError

from router.errors import PolicyError, PolicyIssue
from router.policy import crossref, fitness, source
from router.policy.examples import with_example_files
from router.policy.learned import with_classifier
from router.policy.schema import Policy


class Groups(NamedTuple):
    """The model groups a proxy serves, and where they were read (for messages)."""

    source: str
    names: tuple[str, ...]
    # Each group's deployments' `litellm_params.region_name` (None where a deployment has none).
    regions: Mapping[str, tuple[str | None, ...]] = types.MappingProxyType({})
    pre_call_checks: bool = False  # router_settings.enable_pre_call_checks: LiteLLM filters by region

    @classmethod
    def of(cls, source: str, model_list: object, router_settings: object = None) -> Groups:
        """The `model_name`s of a LiteLLM `model_list`, and the regions of their deployments."""
        entries = [e for e in (model_list if isinstance(model_list, list) else ()) if isinstance(e, dict)]
        regions: dict[str, tuple[str | None, ...]] = {}
        for entry in entries:
            if "model_name" in entry:
                params = entry.get("litellm_params")
                region = params.get("region_name") if isinstance(params, dict) else None
                regions[entry["model_name"]] = (*regions.get(entry["model_name"], ()), region)
        checks = isinstance(router_settings, dict) and router_settings.get("enable_pre_call_checks") is True
        return cls(source, tuple(e["model_name"] for e in entries if "model_name" in e), regions, checks)


def load_policy(path: str | FsPath, env: Mapping[str, str] | None = None, groups: Groups | None = None) -> Policy:
    """Read and validate the policy at `path`; raise PolicyError naming file, line and key path.
    With `groups` (the model groups the proxy serves), every model's target must be one of them."""
    file = str(path)
    try:
        text = FsPath(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([PolicyIssue(file, None, (), f"cannot read the policy file: {exc}")]) from None
    return parse_policy(text, file, env, groups)


def referenced_files(policy: Policy, file: str | FsPath) -> tuple[FsPath, ...]:
    """The files a loaded policy read besides itself (routes' example files, its classifier): a
    change to one is a change to the policy."""
    base = source.base_dir(str(file))
    names = [r.when.examples_file for r in policy.routes if r.when is not None and r.when.examples_file]
    if policy.classifier is not None:
        names.append(policy.classifier.path)
    return tuple(base / name for name in names)


def read_model_groups(config: str | FsPath) -> Groups:
    """The model groups (`model_name`s) of a LiteLLM proxy config's `model_list`."""
    try:
        data = yaml.safe_load(FsPath(config).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PolicyError([PolicyIssue(str(config), None, (), f"cannot read the proxy config: {exc}")]) from None
    if not isinstance(data, dict):
        return Groups.of(str(config), None)
    return Groups.of(str(config), data.get("model_list"), data.get("router_settings"))


def parse_policy(
    text: str, file: str = "<policy>", env: Mapping[str, str] | None = None, groups: Groups | None = None
) -> Policy:
    located = source.parse(text, file, env)
    issues = list(located.issues)
    if located.data is None and not issues:
        issues.append(PolicyIssue(file, 1, (), "the policy file is empty"))
    if issues and located.data is None:
        raise PolicyError(issues)
    policy = None
    try:
        policy = Policy.model_validate(located.data)
    except ValidationError as exc:
        issues += [_issue_from_pydantic(err, located, file) for err in exc.errors()]
    findings = crossref.check(located.data)
    if groups is not None:
        findings += crossref.target_refs(located.data, groups.source, groups.names)
        findings += fitness.deployment_regions(located.data, groups)
    issues += [PolicyIssue(file, located.line_of(path), path, msg) for path, msg in findings]
    if issues or policy is None:
        raise PolicyError(issues)
    policy, issues = with_example_files(policy, located, file)
    issues += with_classifier(policy, located, file)
    if issues:
        raise PolicyError(issues)
    return policy


def _issue_from_pydantic(err: Mapping, located: source.Located, file: str) -> PolicyIssue:
    path = tuple(part for part in err["loc"] if isinstance(part, (str, int)))
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(path[:-1])
        message = f"unknown key '{path[-1]}'" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    elif err["type"] == "missing":
        message = f"missing required key '{path[-1]}'"
    return PolicyIssue(file, located.line_of(path), path, message)


def _allowed_keys(path: tuple[str | int, ...]) -> list[str]:
    """The field names of the model found by walking `path` down from Policy."""
    node: object = Policy
    for part in path:
        node = _step(node, part)
        if node is None:
            return []
    return list(node.model_fields) if _is_model(node) else []


def _step(node: object, part: str | int) -> object:
    if _is_model(node):
        field = node.model_fields.get(part) if isinstance(part, str) else None
        return _unwrap(field.annotation) if field else None
    origin, args = typing.get_origin(node), typing.get_args(node)
    if origin is dict and isinstance(part, str):
        return _unwrap(args[1])
    if origin is tuple and isinstance(part, int):
        return _unwrap(args[0])
    return None


def _unwrap(annotation: object) -> object:
    """`X | None` -> X; Annotated[X, ...] -> X."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else annotation
    return annotation


def _is_model(node: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(node, type) and issubclass(node, BaseModel)
