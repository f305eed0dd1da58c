"""What identifies a cached answer: the canonical request, its tenant scope, and what may be cached."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from router.core.request import Identity

# Request fields that change the answer. Everything else (stream, metadata, user, timeouts,
# fallbacks, LiteLLM's own keys) does not, and must not split the cache.
ANSWER_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "n",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "seed",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "reasoning_effort",
        "thinking",
        "modalities",
        "audio",
        "prediction",
        "top_k",
        "min_p",
        "repetition_penalty",
        "verbosity",
        "web_search_options",
        "extra_body",
    }
)
COMPLETE_FINISH = frozenset({"stop", "tool_calls", "function_call"})


def answer_params(request: Mapping) -> dict:
    return {k: v for k, v in request.items() if k in ANSWER_PARAMS and v is not None}


def skips_lookup(request: Mapping) -> bool:
    """The client asked not to be answered from the cache (`cache: {"no-cache": true}`, the
    per-request control of LiteLLM and its clients); its answer is still stored."""
    controls = request.get("cache")
    return isinstance(controls, Mapping) and controls.get("no-cache") is True


def is_deterministic(params: Mapping) -> bool:
    """Temperature 0 or a fixed seed: the only requests whose answer is worth repeating by default."""
    return params.get("temperature") == 0 or params.get("seed") is not None


def is_complete(response: Mapping) -> bool:
    """A whole, successful answer: every choice finished normally (not cut by length or a filter)."""
    choices = response.get("choices") or []
    return bool(choices) and all(c.get("finish_reason") in COMPLETE_FINISH for c in choices)


def scope_of(identity: Identity, scope: str) -> str:
    """The tenant an entry belongs to; a team scope without a team falls back to the key."""
    if scope == "shared":
        return "shared"
    if scope == "team" and identity.team:
        return f"team:{identity.team}"
    return f"key:{identity.key_hash or 'anonymous'}"


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def exact_key(scope: str, route: str, messages: Sequence, params: Mapping) -> str:
    """The same request (any JSON key order) in the same scope and route gives the same key."""
    return _digest("exact", scope, route, messages, params)


def partition_key(scope: str, route: str, messages: Sequence, params: Mapping) -> str:
    """Semantic neighbours must share everything but the last user message: scope, route,
    parameters, system prompt and earlier turns."""
    return _digest("semantic", scope, route, messages[:-1], params)


def semantic_text(messages: Sequence) -> str | None:
    """The last message's text when it is a user's plain question, else None (no semantic lookup)."""
    if not messages or not isinstance(messages[-1], Mapping) or messages[-1].get("role") != "user":
        return None
    content = messages[-1].get("content")
    if isinstance(content, list):
        if any(isinstance(p, Mapping) and p.get("type") not in (None, "text") for p in content):
            return None  # images, audio, files: their meaning is not in the text
        content = "\n".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    if not isinstance(content, str) or not content.strip():
        return None
    return content.strip()
