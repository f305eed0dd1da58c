"""The ASGI guard in front of the proxy: bodies that are not JSON objects, too large, too many
messages or too deep get a 4xx before the proxy reads them; the rest pass unchanged."""

from __future__ import annotations

import anyio
import pytest

from router.adapter.body_guard import PLAIN_CHAT_FIELDS, RequestGuard, litellm_body_check
from router.errors import RequestRejected
from router.policy.schema import Limits


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


def call(
    chunks: list[bytes],
    content_type: bytes = b"application/json",
    method: str = "POST",
    limits: Limits | None = None,
    vet=None,
    length: int | None = None,
) -> tuple[int, bytes]:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    headers = [(b"content-type", content_type)] + ([(b"content-length", str(length).encode())] if length else [])
    scope = {"type": "http", "method": method, "path": "/v1/chat/completions", "headers": headers}
    anyio.run(RequestGuard(echo, lambda: limits or Limits(), vet), scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_non_object_bodies_are_refused():
    for body in (b"[1,2,3]", b'"hi"', b"7", b"null", b"  \n[1]"):
        status, payload = call([body])
        assert status == 400 and b"must be a JSON object" in payload, body


def test_objects_and_other_requests_pass_unchanged():
    assert call([b'{"model": "auto"}']) == (200, b'{"model": "auto"}')
    assert call([b"  ", b"\n", b'{"a": ', b"1}"]) == (200, b'  \n{"a": 1}')  # in chunks: all replayed
    assert call([b""]) == (200, b"")  # empty: LiteLLM's own answer
    assert call([b"[1]"], content_type=b"multipart/form-data; boundary=x") == (200, b"[1]")
    assert call([b"[1]"], method="GET") == (200, b"[1]")


def test_bodies_that_are_not_json_are_refused():
    status, payload = call([b'{"a": 1}}'])
    assert status == 400 and b"not valid JSON" in payload


def test_a_body_over_the_size_limit_is_refused_unread():
    small = Limits(max_body_bytes=10)
    assert call([b'{"model": "auto"}'], limits=small)[0] == 413
    status, payload = call([b"{}"], limits=small, length=11)  # the announced length is enough
    assert status == 413 and b"max_body_bytes" in payload
    assert call([b'{"a": ', b"1}"], limits=Limits(max_body_bytes=8)) == (200, b'{"a": 1}')


def test_the_shape_limits_apply_before_the_app_reads_the_body():
    many = b'{"messages": [' + b",".join([b'{"role": "user", "content": "hi"}'] * 3) + b"]}"
    status, payload = call([many], limits=Limits(max_messages=2))
    assert status == 413 and b"max_messages" in payload
    deep = b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # deeper than the JSON parser takes
    assert call([deep])[0] == 400


def test_a_vetting_check_sees_the_parsed_body_and_its_route():
    seen = []

    def vet(body, route):
        seen.append((body, route))
        if "api_base" in body:
            raise RequestRejected(400, "api_base is not allowed")

    assert call([b'{"model": "auto"}'], vet=vet)[0] == 200
    status, payload = call([b'{"api_base": "http://x"}'], vet=vet)
    assert status == 400 and b"api_base is not allowed" in payload
    assert seen == [({"model": "auto"}, "/v1/chat/completions"), ({"api_base": "http://x"}, "/v1/chat/completions")]


HOSTILE = {"api_base": "http://attacker.example", "base_url": "http://attacker.example", "api_key": "os.environ/KEY"}


def test_litellms_field_check_passes_any_body_of_plain_chat_fields():
    """The guard skips LiteLLM's check for such bodies: it must not be able to refuse one, whatever
    the values (credentials and endpoints nested in them, secret references). When a LiteLLM upgrade
    starts reading one of these fields, this fails and the field leaves PLAIN_CHAT_FIELDS."""
    from litellm.proxy.auth.auth_utils import is_request_body_safe

    values = ["os.environ/OPENAI_API_KEY", "http://attacker.example", HOSTILE, [HOSTILE], 7]
    for value in values:
        body = {field: value for field in PLAIN_CHAT_FIELDS}
        for route in ("/v1/chat/completions", "/chat/completions", "/v1/embeddings"):
            assert is_request_body_safe(body, {}, None, "gpt-4o", route=route) is True


def test_a_body_with_any_other_field_still_gets_litellms_check_as_a_400():
    for field, value in HOSTILE.items():
        with pytest.raises(RequestRejected) as refused:
            litellm_body_check({"model": "auto", "messages": [], field: value}, "/v1/chat/completions")
        assert refused.value.status == 400 and field in refused.value.message
