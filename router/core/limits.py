"""What one request may hold (policy `settings.limits`), checked before anything walks it.

The proxy checks a body as it arrives (router.adapter.body_guard), before LiteLLM reads it; the
SDK when it routes. The walk is iterative, so a body nested deeper than Python's recursion limit
is refused instead of crashing whatever recurses into it later (a cache key, a token counter).
"""

from __future__ import annotations

from collections.abc import Mapping

from router.errors import RequestRejected
from router.policy.schema import Limits


def check_shape(body: Mapping, limits: Limits) -> None:
    """Raise RequestRejected: 413 for too many messages or content parts, 400 for nesting too deep."""
    messages = body.get("messages")
    if isinstance(messages, list):
        if len(messages) > limits.max_messages:
            raise RequestRejected(
                413,
                f"the request has {len(messages)} messages; this router accepts at most "
                f"{limits.max_messages} (policy settings.limits.max_messages)",
            )
        parts = sum(len(m["content"]) for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list))
        if parts > limits.max_parts:
            raise RequestRejected(
                413,
                f"the messages have {parts} content parts; this router accepts at most "
                f"{limits.max_parts} (policy settings.limits.max_parts)",
            )
    deepest = _depth_beyond(dict(body), limits.max_depth)
    if deepest is not None:
        raise RequestRejected(
            400,
            f"the request nests objects and lists more than {limits.max_depth} deep "
            f"(at {deepest}; policy settings.limits.max_depth)",
        )


def _depth_beyond(body: Mapping, limit: int) -> str | None:
    """Where a value is nested deeper than `limit` (the body itself is depth 1), or None. Levels are
    walked whole, which is cheap; the path is traced only for a body that fails."""
    level: list = [body]
    for _ in range(limit):
        deeper: list = []
        for value in level:  # dict and list, not the ABCs: isinstance against those is ~5x slower
            deeper.extend(
                c for c in (value.values() if isinstance(value, dict) else value) if isinstance(c, (dict, list))
            )
        if not deeper:
            return None
        level = deeper
    return _path_beyond(body, limit)


def _path_beyond(body: Mapping, limit: int) -> str:
    """The last steps of the path to the first value nested deeper than `limit`: `...extra[0][0]`."""
    stack: list[tuple[object, tuple]] = [(body, ())]
    while True:
        value, path = stack.pop()
        if len(path) >= limit:
            return "..." + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path[-3:])
        steps = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        stack.extend((child, (*path, step)) for step, child in steps if isinstance(child, (dict, list)))
