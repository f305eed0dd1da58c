"""Recognising a conversation (router.core.conversation): by sender and opening, or a session id."""

from __future__ import annotations

from router.core.conversation import conversation_of
from router.core.request import Identity

ALICE = Identity(key_hash="k-a", team="t")
FIELDS = ("session_id",)
OPENING = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue?"}]


def key(messages, who=ALICE, **extra):
    found = conversation_of({"messages": messages, **extra}, who, FIELDS)
    return found and (found.key, found.later, found.by)


def test_every_turn_of_a_conversation_has_its_openings_key():
    first = key(OPENING)
    later = key([*OPENING, {"role": "assistant", "content": "Scattering."}, {"role": "user", "content": "more"}])
    assert first[0] == later[0] and (first[1], later[1]) == (False, True) and first[2] == "opening"


def test_the_key_depends_on_sender_system_prompt_and_first_question():
    base = key(OPENING)[0]
    assert key(OPENING, Identity(key_hash="k-b", team="t"))[0] != base
    assert key(OPENING, Identity(key_hash="k-a", team="t", user="u2"))[0] != base
    assert key([{"role": "system", "content": "Be long."}, OPENING[1]])[0] != base
    assert key([OPENING[0], {"role": "user", "content": "Why is grass green?"}])[0] != base


def test_content_parts_read_as_their_text():
    parts = [OPENING[0], {"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]}]
    assert key(parts)[0] == key(OPENING)[0]


def test_a_session_id_names_the_conversation_whatever_the_opening():
    one = key(OPENING, metadata={"session_id": "s1"})
    other = key([{"role": "user", "content": "hi"}], metadata={"session_id": "s1"})
    assert one == other and one[1:] == (True, "session")
    assert key(OPENING, metadata={"session_id": "s1"}, who=Identity(key_hash="k-b"))[0] != one[0]
    assert key(OPENING, metadata={"session_id": ""})[2] == "opening"  # an empty id names nothing


def test_no_user_message_is_no_conversation():
    assert key([{"role": "system", "content": "x"}]) is None
