"""When models fail: each attempt's outcome recorded for model health, per-route timeouts and
retries on LiteLLM's own retry and fallback machinery, providers' retry-after turned into holds,
truncated answers, and one graceful answer when nothing could serve."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from fastapi import HTTPException
from litellm.proxy._types import ProxyException

from router.core.decide import CompiledPolicy, Decision

_UPSTREAM_STATUSES = frozenset({408, 429})  # and every 5xx, and failures without a status (connections)


def attempt_params(compiled: CompiledPolicy, decision: Mapping, data: dict) -> None:
    """Timeout per attempt and retries of the same model before its fallbacks, as the route says."""
    route = compiled.route_by_name.get(decision["route"])
    settings = compiled.settings
    timeout = route.timeout if route is not None and route.timeout is not None else settings.timeout
    data.setdefault("timeout", timeout)
    data["num_retries"] = route.retries if route is not None and route.retries is not None else settings.retries
    # LiteLLM retries a rate-limited single-deployment group after sleeping its retry-after. Never
    # sleep on the request path: move to the next model at once, or answer 429 when there is none
    # (the group is held for the time its provider asked for).
    data["model_group_retry_policy"] = {group: {"RateLimitErrorRetries": 0}
                                        for group in (decision["target"], *decision["fallbacks"])}


def truncation_retry(compiled: CompiledPolicy, decision: Mapping, data: Mapping, response: object,
                     served: str | None) -> Decision | None:
    """The decision to ask the route's larger model again, when an answer was cut off by the
    model's limit rather than the client's own max_tokens (streams are already on their way)."""
    route = compiled.route_by_name.get(decision["route"])
    choices = getattr(response, "choices", None) or []
    if route is None or route.on_truncation is None or data.get("stream") or not choices:
        return None
    if getattr(choices[0], "finish_reason", None) != "length":
        return None
    limit = data.get("max_completion_tokens") or data.get("max_tokens")
    produced = getattr(getattr(response, "usage", None), "completion_tokens", None) or 0
    larger = compiled.resolve(route.on_truncation)
    first = served or decision["target"]
    if (isinstance(limit, int) and produced >= limit) or compiled.spec(larger).target == first:
        return None
    return Decision(decision["route"], larger, compiled.spec(larger).target, (),
                    (f"'{first}' cut its answer off (finish_reason length): retried on '{larger}'",),
                    decision["prompt_tokens"], decision.get("max_output_tokens", 0), answers=decision.get("answers", 1))


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


def rate_limited(decision: Mapping, exc: BaseException) -> HTTPException | None:
    """Our 429 with the provider's Retry-After, for a request whose only model was rate limited."""
    if decision["fallbacks"] or status_of(exc) != 429:
        return None
    wait = max(1, int((retry_after(exc) or 1.0) + 0.999))
    return HTTPException(status_code=429, headers={"Retry-After": str(wait)},
                         detail=f"'{decision['target']}' was rate limited by its provider; retry after {wait}s")


def unavailable(compiled: CompiledPolicy, exc: BaseException) -> HTTPException:
    """The configured answer when a request's every model failed: 503 with Retry-After. (The proxy
    lets a failure hook replace the error only with an HTTPException.)"""
    settings = compiled.settings.unavailable
    wait = max(settings.retry_after, retry_after(exc) or 0.0)
    return HTTPException(status_code=503, detail=settings.message, headers={"Retry-After": str(max(1, int(wait + 0.999)))})


def observe(health, kwargs: Mapping, exc: BaseException | None = None) -> None:
    """A logged success or failure event: the end of the attempt that produced it.

    Failures of async calls are taken from `attempt_failed` instead: the proxy logs one failure
    event per request, whatever the number of attempts, while the deployment hook sees each. Sync
    SDK calls have no deployment hook; each of their attempts is a call of its own, logged apart."""
    standard = kwargs.get("standard_logging_object") or {}
    group = standard.get("model_group")
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
        ttft = first - start if standard.get("stream") and isinstance(first, (int, float)) and latency is not None else None
        health.record(group, deployment, latency, ttft)
        return
    size = ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get("model_group_size")
    _failed(health, group, deployment, latency, exc, size)


def attempt_failed(health, request_data: Mapping, exc: BaseException) -> None:
    """One failed attempt at a deployment (LiteLLM's deployment-level failure hook, which runs for
    the first attempt, every retry and every fallback of async calls)."""
    group = group_of(request_data)
    attempt = request_data.get("litellm_call_id")
    if not group:
        return
    health.mark_reported(attempt)
    began = health.end(attempt, group)
    latency = health.clock() - began if began is not None else None
    _failed(health, group, (request_data.get("model_info") or {}).get("id"), latency, exc,
            _attempt_metadata(request_data).get("model_group_size"))


def group_of(request_data: Mapping) -> str | None:
    """The model group an attempt went to."""
    return _attempt_metadata(request_data).get("model_group")


def _attempt_metadata(request_data: Mapping) -> Mapping:
    return request_data.get("metadata") or request_data.get("litellm_metadata") or {}


def _failed(health, group: str, deployment: str | None, latency: float | None, exc: BaseException,
            group_size: object) -> None:
    if status_of(exc) == 429 and (wait := retry_after(exc)) and (not isinstance(group_size, int) or group_size <= 1):
        # A group of several deployments keeps serving: LiteLLM cools the limited one down for the
        # retry-after itself. It exempts single-deployment groups, so those we hold.
        health.hold(group, wait)
    if counts_as_error(exc):
        # A timed-out attempt is also a (very) slow one: it counts toward the latency percentiles.
        health.record(group, deployment, latency if status_of(exc) == 408 else None, error=True)


def started(health, kwargs: Mapping) -> None:
    """An attempt at a model group begins (LiteLLM calls `log_pre_api_call` once per attempt)."""
    group = ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get("model_group")
    attempt = kwargs.get("litellm_call_id")
    if group and attempt:
        health.begin(attempt, group)
