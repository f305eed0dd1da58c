"""The ASGI guard in front of the proxy: non-object JSON bodies get a 400, the rest pass unchanged."""

from __future__ import annotations

import anyio

from router.adapter.body_guard import JsonObjectGuard


async def echo(scope, receive, send):
    """A downstream app that reads the whole body and sends it back."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def call(chunks: list[bytes], content_type: bytes = b"application/json", method: str = "POST") -> tuple[int, bytes]:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "headers": [(b"content-type", content_type)]}
    anyio.run(JsonObjectGuard(echo), scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_non_object_bodies_are_refused():
    for body in (b"[1,2,3]", b'"hi"', b"7", b"null", b"  \n[1]"):
        status, payload = call([body])
        assert status == 400 and b"must be a JSON object" in payload, body


def test_objects_and_other_requests_pass_unchanged():
    assert call([b'{"model": "auto"}']) == (200, b'{"model": "auto"}')
    assert call([b"  ", b"\n", b'{"a": 1}', b"}"]) == (200, b'  \n{"a": 1}}')  # blank chunks first: all replayed
    assert call([b""]) == (200, b"")  # empty: LiteLLM's own answer
    assert call([b"[1]"], content_type=b"multipart/form-data; boundary=x") == (200, b"[1]")
    assert call([b"[1]"], method="GET") == (200, b"[1]")
