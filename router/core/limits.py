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
            raise RequestRejected(413, f"the request has {len(messages)} messages; this router accepts at most "
                                       f"{limits.max_messages} (policy settings.limits.max_messages)")
        parts = sum(len(m["content"]) for m in messages if isinstance(m, Mapping) and isinstance(m.get("content"), list))
        if parts > limits.max_parts:
            raise RequestRejected(413, f"the messages have {parts} content parts; this router accepts at most "
                                       f"{limits.max_parts} (policy settings.limits.max_parts)")
    deepest = _depth_beyond(body, limits.max_depth)
    if deepest is not None:
        raise RequestRejected(400, f"the request nests objects and lists more than {limits.max_depth} deep "
                                   f"(at {deepest}; policy settings.limits.max_depth)")


def _depth_beyond(body: Mapping, limit: int) -> str | None:
    """The path of the first value nested deeper than `limit` (the body itself is depth 1), or None."""
    stack: list[tuple[object, int, tuple]] = [(body, 1, ())]
    while stack:
        value, depth, path = stack.pop()
        if depth > limit:
            return _path(path)
        if isinstance(value, Mapping):
            stack.extend((child, depth + 1, (*path[-2:], key)) for key, child in value.items()
                         if isinstance(child, (Mapping, list)))
        elif isinstance(value, list):
            stack.extend((child, depth + 1, (*path[-2:], i)) for i, child in enumerate(value)
                         if isinstance(child, (Mapping, list)))
    return None


def _path(path: tuple) -> str:
    """The last steps of a path, enough to find it: `...extra[0][0]`."""
    text = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")
    return "..." + text
