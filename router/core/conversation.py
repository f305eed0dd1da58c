"""Which conversation a request belongs to, pure: the sender (the authenticated identity, never a
field the client sets) with a session id the client names in its metadata, or with the
conversation's opening (system prompt and first user message), which every later turn repeats."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from router.core.params import MAPPING
from router.core.request import Identity, content_text


@dataclass(frozen=True)
class Conversation:
    key: str  # the sender and the conversation, hashed: the store never holds a prompt
    later: bool  # a turn after the first: the request carries an earlier answer, or names a session
    by: str  # "session" or "opening"


def conversation_of(body: Mapping, identity: Identity, session_fields: tuple[str, ...]) -> Conversation | None:
    """None for a body with no user message (nothing to recognise it by). Call after the body was
    routed: its messages were checked then."""
    sender = (identity.key_hash or "", identity.team or "", identity.user or "")
    metadata = body.get("metadata")
    if isinstance(metadata, MAPPING):
        session = next((v for f in session_fields if isinstance(v := metadata.get(f), str | int) and v != ""), None)
        if session is not None:
            return Conversation(_digest(*sender, "session", str(session)), True, "session")
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    system = first_user = None
    later = False
    for index, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer") and system is None and first_user is None:
            system = content_text(message.get("content"), index)
        elif role == "user" and first_user is None:
            first_user = content_text(message.get("content"), index)
        elif role in ("assistant", "tool"):
            later = True
            break
    if first_user is None:
        return None
    return Conversation(_digest(*sender, "opening", system or "", first_user), later, "opening")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:40]
