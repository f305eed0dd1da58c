"""The record of one request's decision, as it travels with the request through LiteLLM.

It rides in the request's metadata (the adapter's `record_of` / `attach_record` are its one reader and
one writer there) and is a plain dict at run time: LiteLLM copies, logs and hands the metadata back
to us, and SDK users read it from `response._hidden_params["router"]`. The keys below are the whole
of it: the pipeline writes the first group, the later steps mark what happened.
"""

from __future__ import annotations

from typing import TypedDict

from router.core.decide import Decision
from router.core.request import Identity


class IdentityFields(TypedDict, total=False):
    key_hash: str | None
    team: str | None
    user: str | None
    tags: list[str]
    key_alias: str | None
    metadata: list[list[str]]  # (field, value) pairs: the key's metadata and the trusted request fields


class BudgetNote(TypedDict):
    name: str
    unit: str
    remaining: float


class DecisionRecord(TypedDict, total=False):
    # the decision (router.core.decide.Decision)
    route: str
    model: str | None
    target: str
    fallbacks: list[str]
    reasons: list[str]
    prompt_tokens: int
    max_output_tokens: int
    shifted_from: str | None
    answers: int
    needs: list[str]  # the capabilities a model must have to serve it
    # admission
    identity: IdentityFields
    reservation: dict  # router.engine.budget_book.Reservation.to_dict()
    budget: BudgetNote  # the budget closest to its limit
    budget_warnings: list[str]
    downgraded_from: str
    downgraded_by: str  # the budget that downgraded it
    reasoning_cap: int
    affinity: str  # "kept": an earlier turn's route and model; "started": this turn's are kept for the next
    # the response cache: "off", "miss", or the tier that answered
    cache: str
    cache_params: dict
    cache_key: str  # the request's exact key: where its answer is stored
    cache_from: str  # on a hit: the exact key of the answer that serves it
    cached_reasoning: str
    capture: dict  # what the ledger keeps for a replay, when the policy captures (router.engine.capture)
    # later steps
    settled: bool  # the reservation was settled or released: later events must not do it again
    truncated_on: str  # the target that cut the answer off; this record is the retry's
    fell_back_from: str


def new_record(decision: Decision, identity: Identity) -> DecisionRecord:
    return DecisionRecord(
        route=decision.route,
        model=decision.model,
        target=decision.target,
        fallbacks=list(decision.fallbacks),
        reasons=list(decision.reasons),
        prompt_tokens=decision.prompt_tokens,
        max_output_tokens=decision.max_output_tokens,
        shifted_from=decision.shifted_from,
        answers=decision.answers,
        needs=sorted(decision.eligible.needs),
        identity=identity_fields(identity),
    )


def identity_fields(identity: Identity) -> IdentityFields:
    return IdentityFields(
        key_hash=identity.key_hash,
        team=identity.team,
        user=identity.user,
        tags=list(identity.tags),
        key_alias=identity.key_alias,
        metadata=[list(pair) for pair in identity.metadata],
    )


def identity_of(record: DecisionRecord) -> Identity:
    """Who the request is for, as the pipeline recorded it."""
    fields = record.get("identity") or {}
    return Identity(
        key_hash=fields.get("key_hash"),
        team=fields.get("team"),
        user=fields.get("user"),
        tags=tuple(fields.get("tags") or ()),
        key_alias=fields.get("key_alias"),
        metadata=tuple((str(f), str(v)) for f, v in fields.get("metadata") or ()),
    )
