"""The house: each package on a floor, importing only from floors below it (or from itself), and only
the adapter touching LiteLLM. Read from the source's imports (lazy ones inside functions too)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "router"
# floor -> the rooms on it; a room is a subpackage or a module of router/
FLOORS = {
    0: {"errors", "settings"},
    1: {"policy", "state"},
    2: {"core"},
    3: {"cache"},
    4: {"engine"},
    5: {"adapter", "ops"},
    6: {"__init__", "__main__"},  # the public API and `python -m router`
}
FLOOR_OF = {room: floor for floor, rooms in FLOORS.items() for room in rooms}
ONLY_THE_ADAPTER = ("litellm", "fastapi", "starlette")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def room_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "router":  # `from router import x`: x is a room
                names.update(f"router.{alias.name}" for alias in node.names)
    return names


def test_every_room_has_a_floor():
    assert {room_of(path) for path in modules()} <= set(FLOOR_OF)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_up_a_floor_or_across_one(path):
    room = room_of(path)
    floor = FLOOR_OF[room]
    for name in imports(path):
        if name.startswith(ONLY_THE_ADAPTER + tuple(f"{n}." for n in ONLY_THE_ADAPTER)):
            assert room == "adapter", f"{name} imported outside the adapter"
        if not name.startswith("router.") or floor == max(FLOORS):
            continue
        target = name.split(".")[1]
        if target == room:
            continue
        assert FLOOR_OF[target] < floor, f"{room} (floor {floor}) imports {name} (floor {FLOOR_OF[target]})"


def test_the_core_and_state_import_nothing_above_them():
    for path in modules():
        if room_of(path) in ("core", "state", "policy"):
            above = {
                n
                for n in imports(path)
                if n.startswith("router.")
                and FLOOR_OF[n.split(".")[1]] >= FLOOR_OF["core"]
                and n.split(".")[1] != room_of(path)
            }
            assert not above, f"{path.name}: {above}"


def test_modules_are_small_and_their_names_are_unique():
    names = Counter(path.name for path in modules() if path.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []
    long = {str(path.relative_to(PACKAGE)): n for path in modules() if (n := len(path.read_text().splitlines())) > 400}
    assert long == {}
