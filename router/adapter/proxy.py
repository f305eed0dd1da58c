"""The LiteLLM proxy callback: route `auto` requests by the policy, hold budgets, account for spend,
and explain every decision in response headers."""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import NoReturn

import litellm

from router.adapter import body_guard, metrics_endpoint, resilience, services
from router.adapter.common import (
    apply_admitted,
    as_served,
    cut_off,
    decision_headers,
    reasoning_first,
    record_of,
    response_cost_headers,
    retry_call,
    served_group,
    success_of,
    write_record,
)
from router.adapter.failure_log import FailureLog
from router.adapter.litellm_api import (
    STRIP_STREAM_USAGE,
    CustomLogger,
    HTTPException,
    LitellmUserRoles,
    ProxyException,
    UserAPIKeyAuth,
)
from router.core.request import Identity
from router.engine.pipeline import Refused
from router.engine.policy_file import PolicyFile
from router.engine.runtime import Runtime
from router.errors import PolicyError, RequestRejected
from router.policy.loader import Groups, read_model_groups
from router.policy.schema import Settings
from router.settings import RouterSettings

log = logging.getLogger("router")
_CHAT_CALLS = frozenset({"completion", "acompletion"})


class PolicyRouter(CustomLogger):
    """Registered in config.yaml as `router.adapter.handler`."""

    def __init__(self, policy: PolicyFile, runtime: Runtime):
        super().__init__()
        self.policy = policy
        self.runtime = runtime
        self.failures = FailureLog()

    # The proxy calls this only when the class itself defines it (LITELLM.md), so it stays here.
    async def async_pre_call_hook(self, user_api_key_dict: UserAPIKeyAuth, cache, data: dict, call_type):
        if call_type not in _CHAT_CALLS:
            _only_for_admins(user_api_key_dict, call_type)
            return data
        identity = _identity(user_api_key_dict, data, self.policy.current.settings)
        try:
            # The request guard checked the client's body as it arrived. Walking it again here would
            # cost twice as much, and would count what LiteLLM has added since (a copy of the whole
            # body under `proxy_server_request`, its metadata) against the client's limits.
            admitted = await self.runtime.run(self.runtime.pipeline.prepare, data, identity, True)
        except RequestRejected as exc:
            raise _refusal(exc, data) from None
        apply_admitted(admitted, data)
        _ask_for_stream_usage(data)
        return data

    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: UserAPIKeyAuth, response):
        """A truncated answer is asked again of the route's larger model (its own admission, budget
        holds and ledger record); the client gets the longer answer, or the first when that fails."""
        finish_reason, produced = cut_off(response)
        record = record_of(data) if finish_reason == "length" else None  # only a cut-off answer is retried
        if record is None:
            return None
        served = served_group(response)
        pipeline = self.runtime.pipeline
        decision = pipeline.truncated(record, data, finish_reason, produced, served)
        if decision is None:
            return None
        retry = None
        try:
            retry = await self.runtime.run(pipeline.admit_retry, record, decision, data, served)
            if retry is None:
                return None
            longer = await _proxy_router().acompletion(**retry_call(data, retry))
        except Exception as exc:  # the truncated answer is still an answer
            log.warning(
                "route %s: retrying a truncated answer on '%s' failed: %s", record["route"], decision.model, exc
            )
            if retry is not None:  # no failure hook runs for a call of ours: give its reservation back
                await self.runtime.run(self.runtime.accounting.on_failure, retry.record)
            return None
        record["truncated_on"] = retry.record["truncated_on"]
        record["reasons"] = [*record["reasons"], *decision.reasons]
        return longer

    async def async_post_call_response_headers_hook(
        self, data, user_api_key_dict, response, request_headers=None, litellm_call_info=None
    ):
        record = record_of(data)
        if record is None:
            return None
        shown = as_served(record, response)
        return {**decision_headers(shown), **response_cost_headers(self.policy.current, shown, response)}

    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        reasoning = (record_of(request_data) or {}).get("cached_reasoning")
        async for chunk in reasoning_first(response, reasoning) if reasoning else response:
            yield chunk

    def log_pre_api_call(self, model, messages, kwargs):
        resilience.started(self.runtime.health, kwargs)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.failures.forget(kwargs.get("litellm_call_id"))
        resilience.observe(self.runtime.health, kwargs)
        success = success_of(kwargs, response_obj, start_time, end_time)
        accounting = self.runtime.accounting
        if success is not None and accounting.claim(success[0]):
            # The answer is on its way: its settlement and ledger record wait for the writer thread,
            # which makes those of the requests that ended meanwhile together and then writes their
            # spend, instead of the event loop that serves everyone's requests (this hook's CPU
            # a request ~110 -> ~40 us in scripts/bench_hooks.py; the writer's grew by ~26-57).
            self.runtime.later(accounting.succeeded, *success, accounting.clock())

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        resilience.observe(self.runtime.health, kwargs, kwargs.get("exception"))

    async def async_post_call_failure_deployment_hook(self, request_data, exception, call_type, fallback_depth=None):
        """Each failed attempt, retries and fallbacks included: the health of the group that made it."""
        resilience.attempt_failed(self.runtime.health, request_data, exception)
        self.failures.attempt_failed(request_data.get("litellm_call_id"), resilience.group_of(request_data), exception)

    async def async_post_call_failure_hook(
        self, request_data, original_exception, user_api_key_dict, traceback_str=None
    ):
        decision = record_of(request_data)
        if decision is None:
            return None
        await self.runtime.run(self.runtime.accounting.on_failure, decision)
        request = request_data.get("litellm_call_id")
        if not resilience.is_upstream_failure(original_exception):
            self.failures.forget(request)
            return None
        answer = resilience.rate_limited(decision, original_exception) or resilience.unavailable(
            self.policy.current, original_exception
        )
        self.failures.failed(request, decision["route"], str(answer.status_code))
        return answer


def _only_for_admins(auth: UserAPIKeyAuth | None, call_type) -> None:
    """Calls other than chat (embeddings, text completions, responses, ...) spend money the policy
    neither prices nor budgets: only the proxy's admins may make them. With the key-file auth a
    tenant key never gets here (router.adapter.auth refuses the route); with LiteLLM's own keys
    this is where they are stopped."""
    if auth is None or auth.user_role != LitellmUserRoles.PROXY_ADMIN:
        raise HTTPException(
            status_code=403,
            detail=f"'{call_type}' calls are not governed by the routing policy: "
            "this key may make chat completions only",
        )


def _refusal(exc: RequestRejected, data: dict) -> HTTPException | ProxyException:
    """The client's answer to a refused request. One refused after routing keeps its record, so the
    answer still says which route and model it was for (nothing was reserved: it is settled)."""
    if isinstance(exc, Refused):
        write_record(data, exc.record)
        if exc.exceeded is not None:
            return ProxyException(
                message=exc.message,
                type="budget_exceeded",
                param=exc.exceeded.budget.name,
                code=429,
                headers=exc.headers,
                provider_specific_fields=exc.exceeded.details(),
            )
    return HTTPException(status_code=exc.status, detail=exc.message, headers=exc.headers or None)


def _ask_for_stream_usage(data: dict) -> None:
    """The proxy asks providers for stream usage before the hooks run, judging by the requested
    model: `auto` maps to no deployment, so it does not ask, and the spend of routed streams would
    read 0. Ask for it the way the proxy does: the usage chunk is stripped from what the client
    sees unless the client asked for it."""
    if data.get("stream") is not True:
        return
    options = data.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return
    data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    data[STRIP_STREAM_USAGE] = True


def _identity(auth: UserAPIKeyAuth | None, data: dict, settings: Settings) -> Identity:
    """Who is asking, from the proxy's authentication: never from fields the client sends, except
    request tags and the metadata fields the policy says to trust."""
    if auth is None:
        return Identity()
    sent = data.get("metadata")
    return Identity.of(
        {"key_hash": auth.api_key, "team": auth.team_id, "user": auth.user_id, "key_alias": auth.key_alias},
        auth.metadata or {},
        sent if isinstance(sent, dict) else {},
        settings.trust_request_tags,
        settings.trusted_metadata,
    )


def build_handler() -> PolicyRouter:
    settings = RouterSettings(**(litellm.callback_settings or {}).get("router", {}))
    _ensure_log_output()
    try:
        policy = PolicyFile(settings.policy, interval=settings.reload_interval, groups=_proxy_groups())
    except PolicyError as exc:
        _refuse_to_start(f"policy {settings.policy}", exc)
    policy.watch()
    body_guard.install(lambda: policy.current.settings.limits)
    log.info(
        "policy %s loaded: %d routes, %d models",
        settings.policy,
        len(policy.current.routes),
        len(policy.current.policy.models),
    )
    runtime = services.start(policy, _proxy_router, write_behind=True)  # off the event loop
    handler = PolicyRouter(policy, runtime)
    handler.failures.install_filter()
    if runtime.metrics is not None:  # read at start-up, like `state`
        metrics_endpoint.install(lambda: policy.current.policy.metrics.path, runtime.metrics.render)
    # Everything loaded so far (LiteLLM, the proxy's modules, our models) lives as long as the
    # process: out of the collector's sight, every collection is cheaper.
    gc.freeze()
    return handler


def _proxy_groups() -> Groups | None:
    """The model groups of the config file the proxy was started with: every target must be one."""
    from litellm.proxy import proxy_server

    path = proxy_server.user_config_file_path
    return read_model_groups(path) if path else None


def _refuse_to_start(what: str, exc: PolicyError) -> NoReturn:
    """Stop the proxy with the problems as the last lines it prints. Raising would have LiteLLM
    print a traceback and its start-up log after them (hundreds of lines) instead."""
    sys.stdout.flush()
    print(f"router: the proxy cannot start: {what} is invalid.\n{exc}", file=sys.stderr, flush=True)
    os._exit(1)


def _proxy_router():
    from litellm.proxy import proxy_server

    return proxy_server.llm_router


def _ensure_log_output() -> None:
    """LiteLLM configures only its own loggers; without this our reload errors would go nowhere."""
    logger = logging.getLogger("router")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("router %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
