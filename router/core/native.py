"""The optional C module (router/core/_native.c, built by `pip install`): the request path's text
work for ASCII text, one call each. `NATIVE` is None when it was not built (no C compiler): the
same results then come from the Python code beside each use, which is also the path for other text."""

from __future__ import annotations

from types import ModuleType

NATIVE: ModuleType | None
try:
    from router.core import _native as NATIVE  # type: ignore[attr-defined, no-redef]
except ImportError:  # pragma: no cover - a build without a compiler
    NATIVE = None
