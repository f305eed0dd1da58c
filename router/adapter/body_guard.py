"""A JSON request body that is not an object (`[1,2,3]`, `"hi"`, `7`) gets a 400 before the proxy reads it.

LiteLLM 1.106.2 reads every body as a dict in its first authentication checks
(`pre_db_read_auth_checks`: `request_data.get("model")`), before any hook a plugin can register
runs, custom_auth included: such a body is a 500 with a traceback. No setting reaches that step,
so this ASGI guard sits in front of the proxy's app. It looks only at the first byte of the body
that is not white space, and hands the body on unread and unchanged.
"""

from __future__ import annotations

import json

_BLANK = b" \t\r\n"
# LiteLLM parses every other body as JSON, whatever its content type says.
_NOT_JSON = (b"multipart/form-data", b"application/x-www-form-urlencoded", b"application/octet-stream")
_BINARY = (b"audio/", b"image/", b"video/")
_ERROR = json.dumps({"error": {"message": "the request body must be a JSON object", "type": "invalid_request_error",
                               "param": None, "code": "400"}}).encode()


class JsonObjectGuard:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") or not _read_as_json(scope):
            return await self.app(scope, receive, send)
        read = []  # the messages taken from `receive` to find the first byte, handed on in order
        while True:
            message = await receive()
            read.append(message)
            first = message.get("body", b"").lstrip(_BLANK)[:1]
            if first or message["type"] != "http.request" or not message.get("more_body"):
                break
        if first and first != b"{":
            return await _refuse(send)

        async def replay():
            return read.pop(0) if read else await receive()

        await self.app(scope, replay, send)


def _read_as_json(scope) -> bool:
    content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
    media = content_type.split(b";")[0].strip().lower()
    return media not in _NOT_JSON and not media.startswith(_BINARY)


async def _refuse(send) -> None:
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_ERROR)).encode())]})
    await send({"type": "http.response.body", "body": _ERROR})


def install() -> None:
    """Put the guard in front of the proxy's app. The proxy loads its callbacks while it starts,
    after Starlette has built the app's middleware (add_middleware is refused then), so the guard
    wraps that stack: the outermost layer, as an added middleware would be."""
    from litellm.proxy import proxy_server

    app = proxy_server.app
    if app.middleware_stack is None:
        app.add_middleware(JsonObjectGuard)
    elif not isinstance(app.middleware_stack, JsonObjectGuard):
        app.middleware_stack = JsonObjectGuard(app.middleware_stack)
