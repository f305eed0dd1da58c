"""Layers in front of the proxy's ASGI app, for what no LiteLLM setting reaches (the request guard,
the metrics endpoint)."""

from __future__ import annotations

from typing import Any


def put_in_front(layer: Any, **options) -> None:
    """Make `layer(app, **options)` (an ASGI middleware class) the outermost layer of the proxy's
    app, once. The proxy loads its callbacks while it starts, after Starlette has built the app's
    middleware (add_middleware is refused then), so the layer wraps that stack: the outermost, as an
    added middleware would be."""
    from litellm.proxy import proxy_server

    app = proxy_server.app
    if app.middleware_stack is None:
        app.add_middleware(layer, **options)
        return
    inner: object = app.middleware_stack
    while inner is not None:
        if isinstance(inner, layer):
            return
        inner = getattr(inner, "app", None)
    app.middleware_stack = layer(app.middleware_stack, **options)
