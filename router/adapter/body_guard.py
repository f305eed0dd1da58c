"""Every JSON request body is checked as it arrives, before LiteLLM reads it: a clear 4xx instead
of LiteLLM's 500s, and no work for bodies no answer could come from.

- Larger than `settings.limits.max_body_bytes`: 413, read no further.
- Not a JSON object (`[1,2,3]`, `"hi"`, `7`) or not JSON: 400. LiteLLM 1.106.2 reads every body as
  a dict in its first authentication checks (`pre_db_read_auth_checks`), before any hook a plugin
  can register runs, custom_auth included: such a body was a 500 with a traceback.
- Too many messages or parts, or nested too deep (`settings.limits`): 413/400 before LiteLLM
  spends seconds on it or recurses into it (router.core.limits).
- A field LiteLLM forbids in a body (`api_base`, `base_url`, `user_config`, ...): LiteLLM's own
  check (`is_request_body_safe`), run here, so that its refusal is a 400: raised where LiteLLM
  raises it, its error handler needs the `prisma` module and answers 500. A body of plain chat
  parameters only cannot fail it and skips it here (LiteLLM still runs it).

No setting reaches those steps, so this ASGI guard sits in front of the proxy's app. It hands the
body on unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import orjson

from router.adapter.asgi import put_in_front
from router.core.limits import check_shape
from router.errors import RequestRejected
from router.policy.schema import Limits

_BLANK = b" \t\r\n"
# LiteLLM parses every other body as JSON, whatever its content type says.
_NOT_JSON = (b"multipart/form-data", b"application/x-www-form-urlencoded", b"application/octet-stream")
_BINARY = (b"audio/", b"image/", b"video/")


Vet = Callable[[dict, str], None]  # a further check of a parsed body and its route; raises RequestRejected


class RequestGuard:
    def __init__(self, app, limits: Callable[[], Limits] = Limits, vet: Vet | None = None):
        self.app = app
        self.limits = limits
        self.vet = vet

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") or not _read_as_json(scope):
            return await self.app(scope, receive, send)
        limits = self.limits()
        too_large = RequestRejected(
            413,
            f"the request body is larger than {limits.max_body_bytes} bytes (policy settings.limits.max_body_bytes)",
        )
        if _content_length(scope) > limits.max_body_bytes:
            return await _refuse(send, too_large)
        read, size = [], 0  # the messages taken from `receive`, handed on in order
        while True:
            message = await receive()
            read.append(message)
            size += len(message.get("body", b""))
            if size > limits.max_body_bytes:
                return await _refuse(send, too_large)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        try:
            body = parse_body(b"".join(m.get("body", b"") for m in read), limits)
            if body is not None and self.vet is not None:
                self.vet(body, scope.get("path", ""))
        except RequestRejected as exc:
            return await _refuse(send, exc)

        async def replay():
            return read.pop(0) if read else await receive()

        await self.app(scope, replay, send)


def parse_body(raw: bytes, limits: Limits) -> dict | None:
    """The body as a checked JSON object (None when empty: LiteLLM answers that itself); raises
    RequestRejected for a body the proxy must not take in."""
    text = raw.lstrip(_BLANK)
    if not text:
        return None
    if text[:1] != b"{":
        raise RequestRejected(400, "the request body must be a JSON object")
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RequestRejected(400, f"the request body is not valid JSON: {exc}") from None
    check_shape(body, limits)
    return body


# Chat parameters LiteLLM's field check never looks at: it reads other fields only (credentials,
# endpoints, metadata, fallbacks, nested configs), whatever their values (tests/unit/test_body_guard.py
# holds this list against the check). A body of these alone passes it, so it is not run twice: LiteLLM
# runs it on every request itself, and this copy only turns its refusal into a 400.
PLAIN_CHAT_FIELDS = frozenset(
    {
        "model", "messages", "temperature", "top_p", "n", "stream", "stream_options", "stop", "max_tokens",
        "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
        "top_logprobs", "user", "response_format", "seed", "tools", "tool_choice", "parallel_tool_calls",
        "functions", "function_call", "reasoning_effort", "modalities", "audio", "prediction",
        "service_tier", "store", "timeout",
    }
)  # fmt: skip


def litellm_body_check(body: dict, route: str) -> None:
    """LiteLLM's own refusal of fields a client must not set, as a 400."""
    if PLAIN_CHAT_FIELDS.issuperset(body):
        return
    from litellm.proxy import proxy_server
    from litellm.proxy.auth.auth_utils import is_request_body_safe

    try:
        is_request_body_safe(
            body, proxy_server.general_settings, proxy_server.llm_router, body.get("model", ""), route=route
        )
    except ValueError as exc:
        raise RequestRejected(400, str(exc)) from None


def _content_length(scope) -> int:
    value = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
    return int(value) if value.isdigit() else 0


def _read_as_json(scope) -> bool:
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    media = content_type.split(b";")[0].strip().lower()
    return media not in _NOT_JSON and not media.startswith(_BINARY)


async def _refuse(send, exc: RequestRejected) -> None:
    body = json.dumps(
        {"error": {"message": exc.message, "type": "invalid_request_error", "param": None, "code": str(exc.status)}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install(limits: Callable[[], Limits]) -> None:
    """Put the guard in front of the proxy's app."""
    put_in_front(RequestGuard, limits=limits, vet=litellm_body_check)
