"""Routes' example files, read at load time: one utterance a line (`#` starts a comment line), or
JSON lines whose `prompt` is the utterance, kept when the line names no `route` or this route.
Their utterances join the route's inline `examples`; a problem names the file and its line."""

from __future__ import annotations

import json
from pathlib import Path

from router.errors import PolicyIssue
from router.policy.schema import Policy, Route
from router.policy.source import Located, base_dir

_MAX_CHARS = 4000  # an example is an utterance, not a document


def with_example_files(policy: Policy, located: Located, file: str) -> tuple[Policy, list[PolicyIssue]]:
    """`policy` with every route's `examples_file` read into its `examples`, and the problems found."""
    base = base_dir(file)
    routes, issues = [], []
    for i, route in enumerate(policy.routes):
        when = route.when
        if when is None or when.examples_file is None:
            routes.append(route)
            continue
        key = ("routes", i, "when", "examples_file")
        found, problems = _read(base / when.examples_file, route, key, located.line_of(key), file)
        issues += problems
        merged = when.model_copy(update={"examples": tuple(dict.fromkeys((*when.examples, *found)))})
        routes.append(route.model_copy(update={"when": merged}))
    return policy.model_copy(update={"routes": tuple(routes)}), issues


def _read(path: Path, route: Route, key: tuple, line: int | None, file: str) -> tuple[list[str], list[PolicyIssue]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [PolicyIssue(file, line, key, f"cannot read the examples file {path}: {exc}")]
    found, issues = [], []
    for number, text in enumerate(lines, 1):
        try:
            example = _example(text, path.suffix == ".jsonl", route.name)
        except ValueError as exc:
            issues.append(PolicyIssue(str(path), number, key, str(exc)))
            continue
        if example:
            found.append(example)
    if not found and not issues:
        issues.append(PolicyIssue(file, line, key, f"{path} holds no example for route '{route.name}'"))
    return found, issues


def _example(text: str, json_lines: bool, route: str) -> str | None:
    if not text.strip() or (not json_lines and text.lstrip().startswith("#")):
        return None
    if json_lines:
        row = json.loads(text)  # a JSONDecodeError is a ValueError
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise ValueError("an examples line must be a JSON object with a `prompt` string")
        if row.get("route") not in (None, route):
            return None
        text = row["prompt"]
    example = text.strip()
    if len(example) > _MAX_CHARS:
        raise ValueError(f"an example holds at most {_MAX_CHARS} characters, this one {len(example)}")
    return example or None
