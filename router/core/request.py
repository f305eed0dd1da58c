"""A checked, read-only view of one chat request: the texts routes look at and a token estimate."""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from router.core.params import MAPPING, check_params, check_role
from router.core.semantic import Embedder
from router.errors import RequestRejected

_SCOPE_ROLES = {"user": ("user",), "system": ("system", "developer"), "all": None}
_ODD_SPACES = ("\n", "\t", "\r", "\xa0", "\u3000")
_PER_MESSAGE_TOKENS = 4  # role and separators, as chat templates add them
# Content part types and the capability a model needs to read them (OpenAI's chat and responses names).
_PART_NEEDS = {
    "image_url": "vision",
    "input_image": "vision",
    "image": "vision",
    "input_audio": "audio",
    "audio": "audio",
    "file": "files",
    "input_file": "files",
}
_JSON_FORMATS = {"json_object": "json", "json_schema": "json_schema"}
T = TypeVar("T")


@dataclass(frozen=True)
class Identity:
    """Who sent the request, as the proxy authenticated it (never a field the client sets)."""

    key_hash: str | None = None
    team: str | None = None
    user: str | None = None
    tags: tuple[str, ...] = ()  # from the key's own metadata (or the request, when the policy trusts it)
    key_alias: str | None = None
    # The key's metadata, and the request metadata fields the policy trusts: (field, value) pairs,
    # a list value giving one pair per item.
    metadata: tuple[tuple[str, str], ...] = ()

    def values(self, field: str) -> tuple[str, ...]:
        return tuple(value for name, value in self.metadata if name == field)

    @classmethod
    def of(
        cls,
        key: Mapping[str, object],
        key_metadata: Mapping[str, object],
        request_metadata: Mapping[str, object],
        trust_request_tags: bool = False,
        trusted_metadata: tuple[str, ...] = (),
    ) -> Identity:
        """The sender as the proxy authenticated it: `key` gives key_hash, team, user, key_alias;
        the key's own metadata (its `tags` among it) always counts, the request's tags and the
        `trusted_metadata` fields of the request's metadata only when the policy says so."""
        tags = list(_strings(key_metadata.get("tags")))
        if trust_request_tags:
            tags += _strings(request_metadata.get("tags"))
        fields = {k: v for k, v in key_metadata.items() if k != "tags"}
        fields.update((k, request_metadata[k]) for k in trusted_metadata if k in request_metadata)

        def text(name: str) -> str | None:
            value = key.get(name)
            return value if isinstance(value, str) else None

        return cls(
            key_hash=text("key_hash"),
            team=text("team"),
            user=text("user"),
            tags=tuple(dict.fromkeys(tags)),
            key_alias=text("key_alias"),
            metadata=tuple((field, item) for field, value in fields.items() for item in _strings(value)),
        )


def _strings(value: object) -> list[str]:
    """A metadata value as strings: a list gives one per item; numbers are written out; the rest is left out."""
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if isinstance(v, (str, int, float)) and not isinstance(v, bool)]


def fold(text: str) -> str:
    """Lower-case with white space runs made single spaces: the form keywords are matched in.

    str.replace is ~10x faster here than split/join, and most prompts have no runs to fold."""
    text = text.lower()
    for space in _ODD_SPACES:
        if space in text:
            text = text.replace(space, " ")
    while "  " in text:
        text = text.replace("  ", " ")
    return text


def estimate_tokens(text: str) -> int:
    """A cheap prompt-token estimate: ~4 ASCII characters a token, ~1 token a CJK character."""
    extra_bytes = len(text.encode("utf-8", "surrogatepass")) - len(text)
    wide = extra_bytes // 2
    return (len(text) - wide + 3) // 4 + wide


class RequestView:
    """The parts of an OpenAI chat request body that routing reads, checked once."""

    __slots__ = (
        "_cache",
        "_once",
        "_roles",
        "_texts",
        "answers",
        "identity",
        "max_output_tokens",
        "model",
        "needs",
        "prompt_chars",
        "prompt_tokens",
        "stream",
    )

    def __init__(self, body: object, max_prompt_chars: int, identity: Identity | None = None):
        if not isinstance(body, MAPPING):
            raise RequestRejected(400, "the request body must be a JSON object")
        check_params(body)
        self.model = body.get("model")
        self.identity = identity or Identity()
        needs: set[str] = set()
        self._roles, self._texts = _read_messages(body.get("messages"), needs)
        _body_needs(body, needs)
        self.needs = frozenset(needs)  # the capabilities a model must have to serve the request
        self.stream = body.get("stream") is True
        self.prompt_chars = sum(len(t) for t in self._texts)
        if self.prompt_chars > max_prompt_chars:
            raise RequestRejected(
                413,
                f"the prompt has {self.prompt_chars} characters; this router accepts at most "
                f"{max_prompt_chars} (policy settings.max_prompt_chars)",
            )
        self.max_output_tokens = _max_output_tokens(body)
        n = body.get("n")
        self.answers = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1  # `n` answers, each billed
        self.prompt_tokens = sum(estimate_tokens(t) for t in self._texts) + _PER_MESSAGE_TOKENS * len(self._texts)
        self._cache: dict[str, str] = {}
        self._once: dict[str, object] = {}

    def text(self, scope: str) -> str:
        """The raw text of the messages in `scope`: last_user, user, system or all."""
        cached = self._cache.get(scope)
        if cached is None:
            cached = self._cache[scope] = self._collect(scope)
        return cached

    def folded(self, scope: str) -> str:
        """`text(scope)` lower-cased with white space runs folded, the form keywords match against."""
        key = "folded:" + scope
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = fold(self.text(scope))
        return cached

    def vector(self, scope: str, embedder: Embedder) -> np.ndarray | None:
        """The embedding of `text(scope)`, stripped (the text the response cache embeds too, so the
        shared embedder's memo serves both); None when there is no text. Once per scope."""

        def embed() -> np.ndarray | None:
            text = self.text(scope).strip()
            return embedder.embed(text) if text else None

        return self.once(f"vector:{scope}", embed)

    def once(self, key: str, make: Callable[[], T]) -> T:
        """`make()`, worked out once for this request (what every route asking for it shares)."""
        if key not in self._once:
            self._once[key] = make()
        return typing.cast(T, self._once[key])

    def _collect(self, scope: str) -> str:
        if scope == "last_user":
            return next((t for r, t in zip(reversed(self._roles), reversed(self._texts)) if r == "user"), "")
        roles = _SCOPE_ROLES[scope]
        return "\n".join(t for r, t in zip(self._roles, self._texts) if roles is None or r in roles)


def _body_needs(body: Mapping, needs: set[str]) -> None:
    """What the request's parameters ask of a model: tools, a JSON answer, reasoning controls."""
    if body.get("tools") or body.get("functions"):
        needs.add("tools")
    response_format = body.get("response_format")
    if isinstance(response_format, MAPPING) and response_format.get("type") in _JSON_FORMATS:
        needs.add(_JSON_FORMATS[response_format["type"]])
    effort = body.get("reasoning_effort")
    thinking = body.get("thinking")
    if (isinstance(effort, str) and effort not in ("none", "minimal")) or (
        isinstance(thinking, MAPPING) and thinking.get("type") == "enabled"
    ):
        needs.add("reasoning")


def _read_messages(messages: object, needs: set[str]) -> tuple[list[str], list[str]]:
    if messages is None:
        raise RequestRejected(400, "`messages` is required: a non-empty list of chat messages")
    if not isinstance(messages, list):
        raise RequestRejected(400, f"`messages` must be a list of chat messages, not {_json_type(messages)}")
    if not messages:
        raise RequestRejected(400, "`messages` must not be empty")
    roles, texts = [], []
    for i, message in enumerate(messages):
        if not isinstance(message, MAPPING) or not isinstance(message.get("role"), str):
            raise RequestRejected(400, f"messages[{i}] must be an object with a string `role`")
        role = message["role"]
        check_role(role, i)
        roles.append(role)
        texts.append(content_text(message.get("content"), i, needs))
        if role in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            needs.add("tools")  # a conversation with tool history needs a model that reads it
    return roles, texts


def content_text(content: object, index: int, needs: set[str] | None = None) -> str:
    """The text of a message's content; the capabilities its other parts need go into `needs`."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts = []
        for j, part in enumerate(content):
            if not isinstance(part, MAPPING):
                raise RequestRejected(400, f"messages[{index}].content[{j}] must be an object (a content part)")
            text = part.get("text")
            if isinstance(text, str):
                parts.append(text)
            elif needs is not None and part.get("type") in _PART_NEEDS:
                needs.add(_PART_NEEDS[part["type"]])
        return "\n".join(parts)
    raise RequestRejected(
        400, f"messages[{index}].content must be a string or a list of content parts, not {_json_type(content)}"
    )


def _max_output_tokens(body: Mapping) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestRejected(400, f"`{key}` must be a positive integer, not {value!r}")
        return value
    return 0


def _json_type(value: object) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean", dict: "an object"}
    return names.get(type(value), type(value).__name__)
