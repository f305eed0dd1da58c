"""What the ledger keeps of a request for a replay, when the policy's `capture` asks: the body's
messages and the parameters a decision or an answer depends on, the session id affinity reads, and
the authenticated sender; each `redact` expression's matches replaced first, and only a `sample`
of the requests. Nothing LiteLLM or the proxy added to the body (its metadata, keys, the raw
request) is kept."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Mapping

from router.cache.keys import ANSWER_PARAMS
from router.core.request import Identity
from router.engine.record import identity_fields
from router.policy.observe import CaptureConfig

REDACTED = "[redacted]"
# What changes the answer (the cache's list), and what changes how it is served or routed.
_PARAMS = ANSWER_PARAMS | {"model", "stream", "stream_options", "user"}


def captured(
    config: CaptureConfig,
    body: Mapping,
    identity: Identity,
    session_fields: tuple[str, ...] = (),
    draw: Callable[[], float] = random.random,
) -> dict | None:
    """The capture of one request, or None when the policy keeps none of it (or not this one)."""
    if not config.prompts or (config.sample < 1 and draw() >= config.sample):
        return None
    pattern = _compiled(config.redact)
    redacted = [0]  # matches replaced, over all messages
    kept = {k: v for k, v in body.items() if k in _PARAMS}
    kept["messages"] = [_redacted(m, pattern, redacted) for m in body.get("messages") or ()]
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):
        session = {f: metadata[f] for f in session_fields if isinstance(metadata.get(f), str | int)}
        if session:
            kept["metadata"] = session
    found: dict[str, object] = {"body": kept, "identity": identity_fields(identity)}
    if redacted[0]:
        found["redacted"] = redacted[0]  # a replay decides on the redacted text: it may choose otherwise
    return found


@functools.lru_cache(maxsize=16)
def _compiled(patterns: tuple[str, ...]) -> re.Pattern | None:
    """The policy's expressions as one (the loader checked each compiles)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def _redacted(message: object, pattern: re.Pattern | None, count: list[int]) -> object:
    if not isinstance(message, Mapping):
        return message
    if pattern is None:
        return dict(message)

    def cleaned(text: str) -> str:
        text, n = pattern.subn(REDACTED, text)
        count[0] += n
        return text

    content = message.get("content")
    if isinstance(content, str):
        return {**message, "content": cleaned(content)}
    if isinstance(content, list):
        parts = [
            {**part, "text": cleaned(part["text"])}
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
        return {**message, "content": parts}
    return dict(message)
