"""Recorded traffic for a replay, read from JSON lines in any of three shapes, told apart line by line:

- the router's own ledger records (the raw record files, `ledger-*.jsonl`), with the request the
  policy's `capture` kept: the body as the client sent it, its sender, tokens by kind, latency,
  outcome and cost;
- LiteLLM's logs: its standard logging payloads (what a custom logger or the s3/GCS/file loggers
  write) and its spend log rows (`LiteLLM_SpendLogs` exported), traffic from before the router;
- plain OpenAI chat request bodies, or Batch API lines (`{"custom_id", "body": {...}}`): no usage
  and no times (replayed `spacing` seconds apart).

A line that is none of these, or not JSON, is a problem named by file and line and skipped."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from router.core.request import Identity
from router.engine.ledger import CAPTURED
from router.engine.record import DecisionRecord, identity_of

CHAT_CALLS = frozenset({"completion", "acompletion"})


@dataclass
class Recorded:
    where: str  # file:line
    t: float
    body: dict  # the chat request: messages and parameters
    identity: Identity
    source: str  # "router", "litellm" or "openai"
    route: str | None = None  # what the router chose then (its own records only)
    target: str | None = None  # the model group that answered
    asked: str | None = None  # the model group the router chose, when a fallback answered instead
    usage: dict | None = None  # OpenAI's usage shape; None when nothing was recorded
    latency: float | None = None  # seconds
    outcome: str = "ok"  # "ok", "error", "budget_rejected"
    cost_usd: float | None = None
    cache: str | None = None  # the router's record of its response cache: off, miss, exact, semantic...
    redacted: int = 0  # matches the capture's `redact` replaced: the replay reads the redacted text


@dataclass
class Traffic:
    items: list[Recorded] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "file:line: why", one per skipped line
    uncaptured: int = 0  # router records without a captured request: nothing to replay them from


def read_traffic(paths: Iterable[Path], model: str | None, spacing: float = 1.0) -> Traffic:
    """Every request in the files (a directory: its ledger-*.jsonl and *.jsonl), oldest first.
    `model`: the model LiteLLM's and OpenAI's requests are replayed as asking for (the policy's auto
    model: the policy chooses), or None to keep the one they named."""
    traffic = Traffic()
    for path in _files(paths):
        try:
            _read_file(path, model, spacing, traffic)
        except OSError as exc:
            traffic.problems.append(f"{path}: cannot read: {exc}")
    traffic.items.sort(key=lambda item: item.t)  # stable: a file's own order holds within a moment
    return traffic


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".json", ".ndjson"))
        else:
            yield path


def _read_file(path: Path, model: str | None, spacing: float, traffic: Traffic) -> None:
    start = path.stat().st_mtime
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                traffic.problems.append(f"{where}: not JSON ({exc})")
                continue
            try:
                found = _parse(item, where, model, start + number * spacing)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                found = f"{where}: {exc}"
            if isinstance(found, Recorded):
                traffic.items.append(found)
            elif found is None:
                traffic.uncaptured += 1
            else:
                traffic.problems.append(found)


def _parse(item: object, where: str, model: str | None, t: float) -> Recorded | str | None:
    """The request a line records; a problem (str); None for a router record without its request."""
    if not isinstance(item, dict):
        return f"{where}: not a JSON object"
    if "outcome" in item and "route" in item:
        return _router(item, where)
    if "call_type" in item and "model_parameters" in item:
        return _litellm_payload(item, where, model)
    if "request_id" in item and "spend" in item:
        return _spend_log(item, where, model)
    inner = item.get("body")
    body: dict = inner if isinstance(inner, dict) else item
    if "messages" in body:
        return _openai(body, where, model, float(item.get("t") or item.get("timestamp") or t))
    return f"{where}: not a request (a router ledger record, a LiteLLM log line or an OpenAI request)"


def _router(item: dict, where: str) -> Recorded | str | None:
    captured = item.get(CAPTURED)
    if captured is None:
        return None
    body = captured.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return f"{where}: its captured request has no messages"
    tokens = item.get("tokens")
    return Recorded(
        where,
        float(item["t"]),
        body,
        identity_of(typing.cast(DecisionRecord, {"identity": captured.get("identity") or {}})),
        "router",
        route=item.get("route"),
        target=item.get("served") or item.get("target"),
        asked=item["target"] if item.get("served") and item.get("target") != item["served"] else None,
        usage=_usage(tokens) if isinstance(tokens, dict) else None,
        latency=None if item.get("latency_ms") is None else item["latency_ms"] / 1000,
        outcome=str(item.get("outcome") or "ok"),
        cost_usd=item.get("cost_usd"),
        cache=item.get("cache"),
        redacted=int(captured.get("redacted") or 0),
    )


def _usage(tokens: Mapping) -> dict:
    """A ledger record's tokens by kind as OpenAI's usage: the prices apply to it as to the answer's."""
    return {
        "prompt_tokens": int(tokens.get("prompt") or 0),
        "completion_tokens": int(tokens.get("completion") or 0),
        "prompt_tokens_details": {"cached_tokens": int(tokens.get("cached") or 0)},
        "completion_tokens_details": {"reasoning_tokens": int(tokens.get("reasoning") or 0)},
    }


def _litellm_payload(item: dict, where: str, model: str | None) -> Recorded | str:
    if item["call_type"] not in CHAT_CALLS:
        return f"{where}: a LiteLLM '{item['call_type']}' call, not a chat completion"
    messages = _json(item.get("messages"))
    if not isinstance(messages, list):
        return f"{where}: a LiteLLM log line without its messages"
    meta = item.get("metadata") or {}
    group = item.get("model_group") or item.get("model")
    body = {**(item.get("model_parameters") or {}), "model": model or group, "messages": messages}
    identity = Identity(
        key_hash=meta.get("user_api_key_hash"),
        team=meta.get("user_api_key_team_id"),
        user=meta.get("user_api_key_user_id"),
        tags=tuple(item.get("request_tags") or ()),
        key_alias=meta.get("user_api_key_alias"),
    )
    return _foreign(item, where, body, identity, group, float(item["startTime"]), float(item["endTime"]))


def _spend_log(item: dict, where: str, model: str | None) -> Recorded | str:
    if item.get("call_type") not in CHAT_CALLS:
        return f"{where}: a LiteLLM '{item.get('call_type')}' call, not a chat completion"
    asked = _json(item.get("proxy_server_request"))
    messages = asked.get("messages") if isinstance(asked, dict) else _json(item.get("messages"))
    if not isinstance(messages, list):
        return f"{where}: a LiteLLM spend log row without its messages (proxy_server_request or messages)"
    group = item.get("model_group") or item.get("model")
    body = dict(asked) if isinstance(asked, dict) else {}
    body.update(messages=messages, model=model or body.get("model") or group)
    meta = _json(item.get("metadata")) or {}
    identity = Identity(
        key_hash=item.get("api_key") or None,
        team=item.get("team_id"),
        user=item.get("user") or None,
        tags=tuple(typing.cast(list, _json(item.get("request_tags")) or ())),
        key_alias=meta.get("user_api_key_alias") if isinstance(meta, dict) else None,
    )
    return _foreign(item, where, body, identity, group, _moment(item["startTime"]), _moment(item["endTime"]))


def _foreign(item: dict, where: str, body: dict, identity: Identity, group, start: float, end: float) -> Recorded:
    """A LiteLLM line's common part: its usage (reasoning and cached tokens from the answer's own
    usage when it was logged), latency and outcome."""
    response = _json(item.get("response"))
    answered = response.get("usage") if isinstance(response, dict) else None
    usage = dict(answered) if isinstance(answered, dict) else {}
    usage.update(
        prompt_tokens=int(item.get("prompt_tokens") or 0), completion_tokens=int(item["completion_tokens"] or 0)
    )
    cost = item.get("response_cost", item.get("spend"))
    return Recorded(
        where,
        start,
        body,
        identity,
        "litellm",
        target=group,
        usage=usage,
        latency=max(0.0, end - start),
        outcome="ok" if item.get("status", "success") == "success" else "error",
        cost_usd=None if cost is None else float(cost),
        cache="exact" if item.get("cache_hit") in (True, "True", "true") else None,
    )


def _openai(body: dict, where: str, model: str | None, t: float) -> Recorded | str:
    if not isinstance(body.get("messages"), list):
        return f"{where}: `messages` is not a list"
    return Recorded(where, t, {**body, "model": model or body.get("model")}, Identity(), "openai")


def _json(value: object) -> object:
    """A field LiteLLM may keep as a JSON string."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _moment(value: object) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()  # LiteLLM writes UTC
