"""When models fail: each attempt's outcome recorded for model health, providers' retry-after turned
into holds, and one graceful answer when nothing could serve. (Per-route timeouts, retries and the
retry of truncated answers are the pipeline's: router.engine.pipeline.)"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from router.adapter.common import metadata_of
from router.adapter.litellm_api import (
    LOGGED_PARAMS,
    MODEL_GROUP,
    MODEL_GROUP_SIZE,
    STANDARD_LOG,
    HTTPException,
    ProxyException,
)
from router.core.decide import CompiledPolicy
from router.engine.health import Health
from router.engine.record import DecisionRecord

_UPSTREAM_STATUSES = frozenset({408, 429})  # and every 5xx, and failures without a status (connections)


def retry_after(exc: BaseException) -> float | None:
    """Seconds from the provider's Retry-After header (a number or an HTTP date), if it sent one."""
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        seconds = email.utils.mktime_tz(parsed) - time.time() if parsed else -1.0
    return seconds if seconds > 0 else None


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return int(status) if isinstance(status, int) or (isinstance(status, str) and status.isdigit()) else None


def is_upstream_failure(exc: BaseException) -> bool:
    """A provider (or the way to it) failed, as opposed to a refusal of ours or a bad request."""
    if isinstance(exc, (HTTPException, ProxyException)):
        return False
    if not type(exc).__module__.startswith(("litellm", "openai", "httpx")):
        return False
    status = status_of(exc)
    return status is None or status >= 500 or status in _UPSTREAM_STATUSES


def counts_as_error(exc: BaseException) -> bool:
    """Failures that speak about the model's health (5xx, timeouts, lost connections); a 429 is the
    provider pacing us and is honoured as a hold instead."""
    status = status_of(exc)
    return is_upstream_failure(exc) and status != 429


def rate_limited(decision: DecisionRecord, exc: BaseException) -> HTTPException | None:
    """Our 429 with the provider's Retry-After, for a request whose only model was rate limited."""
    if decision["fallbacks"] or status_of(exc) != 429:
        return None
    wait = max(1, int((retry_after(exc) or 1.0) + 0.999))
    return HTTPException(
        status_code=429,
        headers={"Retry-After": str(wait)},
        detail=f"'{decision['target']}' was rate limited by its provider; retry after {wait}s",
    )


def unavailable(compiled: CompiledPolicy, exc: BaseException) -> HTTPException:
    """The configured answer when a request's every model failed: 503 with Retry-After. (The proxy
    lets a failure hook replace the error only with an HTTPException.)"""
    settings = compiled.settings.unavailable
    wait = max(settings.retry_after, retry_after(exc) or 0.0)
    return HTTPException(
        status_code=503, detail=settings.message, headers={"Retry-After": str(max(1, int(wait + 0.999)))}
    )


def observe(health: Health, kwargs: Mapping, exc: BaseException | None = None) -> None:
    """A logged success or failure event: the end of the attempt that produced it.

    Failures of async calls are taken from `attempt_failed` instead: the proxy logs one failure
    event per request, whatever the number of attempts, while the deployment hook sees each. Sync
    SDK calls have no deployment hook; each of their attempts is a call of its own, logged apart."""
    standard = kwargs.get(STANDARD_LOG) or {}
    group = standard.get(MODEL_GROUP)
    attempt = kwargs.get("litellm_call_id")
    if exc is not None and health.reported(attempt):
        return
    began = health.end(attempt, group)
    if not group or standard.get("cache_hit"):
        return  # a cache hit says nothing about a model
    start, end, first = standard.get("startTime"), standard.get("endTime"), standard.get("completionStartTime")
    if began is not None:
        start = began  # the proxy's event times span the whole request, earlier failed attempts included
    latency = end - start if isinstance(start, (int, float)) and isinstance(end, (int, float)) else None
    deployment = standard.get("model_id")
    if exc is None:
        ttft = None
        if standard.get("stream") and isinstance(first, (int, float)) and isinstance(start, (int, float)):
            ttft = first - start
        health.record(group, deployment, latency, ttft)
        return
    size = metadata_of(kwargs.get(LOGGED_PARAMS) or {}).get(MODEL_GROUP_SIZE)
    _failed(health, group, deployment, latency, exc, size)


def attempt_failed(health: Health, request_data: Mapping, exc: BaseException) -> None:
    """One failed attempt at a deployment (LiteLLM's deployment-level failure hook, which runs for
    the first attempt, every retry and every fallback of async calls)."""
    group = group_of(request_data)
    attempt = request_data.get("litellm_call_id")
    if not group:
        return
    health.mark_reported(attempt)
    began = health.end(attempt, group)
    latency = health.clock() - began if began is not None else None
    _failed(
        health,
        group,
        (request_data.get("model_info") or {}).get("id"),
        latency,
        exc,
        metadata_of(request_data).get(MODEL_GROUP_SIZE),
    )


def group_of(request_data: Mapping) -> str | None:
    """The model group an attempt went to."""
    return metadata_of(request_data).get(MODEL_GROUP)


def _failed(
    health: Health, group: str, deployment: str | None, latency: float | None, exc: BaseException, group_size: object
) -> None:
    if status_of(exc) == 429 and (wait := retry_after(exc)) and (not isinstance(group_size, int) or group_size <= 1):
        # A group of several deployments keeps serving: LiteLLM cools the limited one down for the
        # retry-after itself. It exempts single-deployment groups, so those we hold.
        health.hold(group, wait)
    if counts_as_error(exc):
        # A timed-out attempt is also a (very) slow one: it counts toward the latency percentiles.
        health.record(group, deployment, latency if status_of(exc) == 408 else None, error=True)


def started(health: Health, kwargs: Mapping) -> None:
    """An attempt at a model group begins (LiteLLM calls `log_pre_api_call` once per attempt)."""
    group = metadata_of(kwargs.get(LOGGED_PARAMS) or {}).get(MODEL_GROUP)
    attempt = kwargs.get("litellm_call_id")
    if group and attempt:
        health.begin(attempt, group)
