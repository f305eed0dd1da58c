"""`GET /router/metrics` (the policy's `metrics.path`) on the proxy's own port: the router's
Prometheus metrics, answered before the request reaches LiteLLM's app (no auth, like LiteLLM's
/metrics; the labels hold no key or prompt)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from router.adapter.asgi import put_in_front
from router.engine.metrics import CONTENT_TYPE


class MetricsEndpoint:
    def __init__(self, app, path: Callable[[], str], render: Callable[[], bytes]):
        self.app = app
        self.path = path
        self.render = render

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path():
            return await self.app(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD"):
            return await _answer(send, 405, b"GET only\n", "text/plain")
        # With several workers the samples are read from their files: off the event loop.
        body = await asyncio.to_thread(self.render)
        await _answer(send, 200, body if scope["method"] == "GET" else b"", CONTENT_TYPE)


async def _answer(send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(path: Callable[[], str], render: Callable[[], bytes]) -> None:
    put_in_front(MetricsEndpoint, path=path, render=render)
