"""YAML text to plain data, remembering the line of every value and expanding `${VAR}`.

PyYAML's `safe_load` forgets where values came from and silently keeps the last of two equal
keys; we compose the node tree instead, so every later error can name its line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path as FsPath

import yaml

from router.errors import PolicyIssue

Path = tuple[str | int, ...]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_constructor = yaml.constructor.SafeConstructor()


class Located:
    """Parsed data plus the line (1-based) of each value, keyed by its path."""

    def __init__(self, data: object, lines: dict[Path, int], issues: list[PolicyIssue]):
        self.data = data
        self.lines = lines
        self.issues = issues

    def line_of(self, path: Path) -> int | None:
        """The line of the deepest known value along `path` (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def parse(text: str, file: str, env: Mapping[str, str] | None = None) -> Located:
    env = os.environ if env is None else env
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return Located(None, {}, [PolicyIssue(file, line, (), f"invalid YAML: {problem}")])
    lines: dict[Path, int] = {}
    issues: list[PolicyIssue] = []
    data = _build(root, (), lines, issues, file, env) if root is not None else None
    return Located(data, lines, issues)


def _build(node: yaml.Node, path: Path, lines, issues, file, env) -> object:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = str(_constructor.construct_object(key_node))
            if key in out:
                issues.append(PolicyIssue(file, key_node.start_mark.line + 1, path + (key,), "duplicate key"))
                continue
            out[key] = _build(value_node, path + (key,), lines, issues, file, env)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, issues, file, env) for i, item in enumerate(node.value)]
    value = _constructor.construct_object(node)
    if isinstance(value, str) and "${" in value:
        return _interpolate(value, path, lines[path], issues, file, env)
    return value


def _interpolate(value: str, path: Path, line: int, issues, file, env) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        issues.append(
            PolicyIssue(
                file, line, path, f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"
            )
        )
        return ""

    return _ENV.sub(replace, value)


def base_dir(file: str) -> FsPath:
    """Where a policy's relative file names (example files, its classifier) start: its folder, or
    the working directory for a policy given as text."""
    return FsPath(file).parent if file != "<policy>" else FsPath.cwd()
