"""What the cross-reference checks share: the shape of a finding, and how names and lists of names
in the raw policy data are read and checked."""

from __future__ import annotations

from collections.abc import Iterator

Finding = tuple[tuple[str | int, ...], str]


def duplicate_names(items: list, section: str, what: str) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if name in seen:
            yield (section, i, "name"), f"duplicate {what} name '{name}' (also {section}[{seen[name]}])"
        seen.setdefault(name, i)


def name_list(value: object, path: tuple) -> Iterator[tuple[tuple, object]]:
    """(path, name) for a field that takes one name or a list of them."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        yield from ((path + (j,), item) for j, item in enumerate(value))


def model_ref(ref: object, path: tuple, known: dict[str, str]) -> Iterator[Finding]:
    if isinstance(ref, str) and ref not in known:
        choices = ", ".join(sorted(known)) or "none defined"
        yield path, f"unknown model '{ref}' (models and aliases: {choices})"
