"""SDK wiring: after `install()`, `litellm.completion(model="auto")` and `litellm.acompletion(...)` are
routed by the policy, sync and async, streaming and not, with the same cache, budgets and ledger.

Sync calls run none of LiteLLM's async hooks, so the routing lives in a custom provider (`policy/`)
that decides and then calls the chosen model. Two small registrations steer `auto` to it: the alias
map (read by sync `completion`) and a deployment hook (async `acompletion` checks the provider
before it reads the alias map). The outer `policy/auto` call is logged by LiteLLM too; only the
inner call carries the decision, so spend is counted once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import litellm
import yaml

from router.adapter import resilience, services
from router.adapter.common import (
    apply_admitted,
    cut_off,
    logged_success,
    reasoning_first,
    record_of,
    retry_call,
    served_group,
)
from router.adapter.litellm_api import CALLBACK_LISTS, CustomLLM, CustomLLMError, CustomLogger
from router.core.request import Identity
from router.engine.policy_file import PolicyFile
from router.engine.record import DecisionRecord
from router.engine.runtime import Runtime
from router.errors import RequestRejected
from router.policy.loader import Groups
from router.settings import RouterSettings

PROVIDER = "policy"
# Request fields LiteLLM hands to a custom provider that are not model parameters.
_NOT_PARAMS = frozenset({"model", "messages", "stream", "stream_options"})


class PolicyProvider(CustomLLM):
    """The `policy/` provider: decide, then call the chosen target with the request's own parameters."""

    runtime: Runtime  # set by install(), once the provider exists for the runtime to look its Router up

    def __init__(self, policy: PolicyFile, router: litellm.Router | None, identity: Identity):
        super().__init__()
        self.policy = policy
        self.router = router
        self.identity = identity

    def completion(self, model, messages, *args, optional_params=None, **kwargs):
        call = self._prepare(messages, optional_params, stream=False)
        with self._released_on_failure(call):
            response = self._sync()(**call)
        again = self._truncation_call(call, response)
        if again is not None:
            try:
                with self._released_on_failure(again):
                    response, call = self._sync()(**again), again
            except Exception:  # the truncated answer is still an answer
                pass
        return _tag(response, call)

    def streaming(self, model, messages, *args, optional_params=None, **kwargs):
        call = self._prepare(messages, optional_params, stream=True)  # eager: a rejection raises here
        with self._released_on_failure(call):
            return iter(self._sync()(**call))

    async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):
        call = self._prepare(messages, optional_params, stream=False)
        with self._released_on_failure(call):
            response = await self._async()(**call)
        again = self._truncation_call(call, response)
        if again is not None:
            try:
                with self._released_on_failure(again):
                    response, call = await self._async()(**again), again
            except Exception:  # the truncated answer is still an answer
                pass
        return _tag(response, call)

    async def astreaming(self, model, messages, *args, optional_params=None, **kwargs):
        call = self._prepare(messages, optional_params, stream=True)
        with self._released_on_failure(call):
            stream = await self._async()(**call)
        async for chunk in reasoning_first(stream, _record(call).get("cached_reasoning")):
            yield chunk

    def _prepare(self, messages: list, optional_params: Mapping | None, stream: bool) -> dict:
        """The inner call's arguments; the record rides in its metadata, where the cache backend
        and the accounting callback read it."""
        params = {k: v for k, v in (optional_params or {}).items() if k not in _NOT_PARAMS}
        body = {"model": self.policy.current.settings.auto_model, "messages": messages, **params}
        try:
            admitted = self.runtime.pipeline.prepare(body, self.identity)
        except RequestRejected as exc:
            raise CustomLLMError(status_code=exc.status, message=exc.message) from None
        call = {"messages": messages, **params}
        apply_admitted(admitted, call, router=self.router is not None)
        if stream:
            # Without this the SDK streams from a custom api_base carry no usage: spend would read 0.
            call.update(stream=True, stream_options={"include_usage": True})
        return call

    def _truncation_call(self, call: dict, response) -> dict | None:
        """The call again for the route's larger model when the answer was cut off (admitted on its own)."""
        record = _record(call)
        served = served_group(response) if self.router else None
        pipeline = self.runtime.pipeline
        decision = pipeline.truncated(record, call, *cut_off(response), served)
        retry = pipeline.admit_retry(record, decision, call, served) if decision is not None else None
        return retry_call(call, retry, router=self.router is not None) if retry is not None else None

    def _released_on_failure(self, call: dict):
        return _ReleaseOnFailure(self.runtime, _record(call))

    def _sync(self):
        return self.router.completion if self.router else litellm.completion

    def _async(self):
        return self.router.acompletion if self.router else litellm.acompletion


class _ReleaseOnFailure:
    """Give a failed call's budget reservation back (the proxy has a hook for this; the SDK has not)."""

    def __init__(self, runtime: Runtime, decision: DecisionRecord):
        self.runtime, self.decision = runtime, decision

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None:
            self.runtime.accounting.on_failure(self.decision)
        return False


class _SdkHooks(CustomLogger):
    """Steers async `acompletion(model="auto")` to the provider and settles spend from inner calls."""

    def __init__(self, auto_model: str, runtime: Runtime):
        super().__init__()
        self.auto_model = auto_model
        self.runtime = runtime

    async def async_pre_call_deployment_hook(self, kwargs, call_type):
        if kwargs.get("model") == self.auto_model:
            kwargs = {**kwargs, "model": f"{PROVIDER}/{self.auto_model}"}
        return kwargs

    def log_pre_api_call(self, model, messages, kwargs):
        resilience.started(self.runtime.health, kwargs)

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        resilience.observe(self.runtime.health, kwargs)
        logged_success(self.runtime.accounting, kwargs, response_obj, start_time, end_time)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.log_success_event(kwargs, response_obj, start_time, end_time)

    def log_failure_event(self, kwargs, response_obj, start_time, end_time):
        resilience.observe(self.runtime.health, kwargs, kwargs.get("exception"))

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self.log_failure_event(kwargs, response_obj, start_time, end_time)

    async def async_post_call_failure_deployment_hook(self, request_data, exception, call_type, fallback_depth=None):
        resilience.attempt_failed(self.runtime.health, request_data, exception)


def _tag(response, call: dict):
    """Leave the decision where SDK users can read it: `response._hidden_params["router"]`."""
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        hidden["router"] = _record(call)
    return response


def _record(call: Mapping) -> DecisionRecord:
    record = record_of(call)
    assert record is not None, "every call the provider makes carries its record"
    return record


def install(
    policy: str | os.PathLike | None = None,
    *,
    config: str | os.PathLike | None = None,
    model_list: list[dict] | None = None,
    watch: bool = True,
    identity: Identity | None = None,
) -> PolicyProvider:
    """Route `litellm.completion(model="auto")` (the policy's `settings.auto_model`) by `policy`
    (default: ROUTER_POLICY, else policies/default.yaml).

    Targets are model groups of `model_list`, or of the `model_list` in a proxy `config` file (whose
    `os.environ/` values are resolved from the environment, as the proxy does); with
    neither, targets are LiteLLM model strings such as `deepseek/deepseek-chat`. `identity` is who
    the calls are for, for per-key, team or user budgets and cache scopes.
    Calling it again replaces the earlier installation.
    """
    settings = RouterSettings()
    if config is not None:
        model_list = _read_model_list(config)
    groups = Groups.of(str(config or "model_list"), model_list) if model_list else None
    source = PolicyFile(
        policy if policy is not None else settings.policy, interval=settings.reload_interval, groups=groups
    )
    if watch:
        source.watch()
    provider = PolicyProvider(source, None, identity or Identity())
    provider.runtime = services.start(source, lambda: provider.router)
    if model_list:
        # After the runtime has installed the response cache: a Router asked to cache responses
        # while litellm.cache is unset installs a cache of its own. Without cache_responses it
        # sends `caching=False` with every call, and no call would ever be looked up.
        provider.router = litellm.Router(model_list=model_list, cache_responses=provider.runtime.cache is not None)
    auto = source.current.settings.auto_model
    litellm.custom_provider_map = [p for p in litellm.custom_provider_map if p["provider"] != PROVIDER]
    litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": provider})
    litellm.utils.custom_llm_setup()
    litellm.model_alias_map = {**litellm.model_alias_map, auto: f"{PROVIDER}/{auto}"}
    for name in CALLBACK_LISTS:  # an earlier installation's hooks, wherever LiteLLM copied them
        setattr(litellm, name, [cb for cb in getattr(litellm, name) if not isinstance(cb, _SdkHooks)])
    litellm.callbacks.append(_SdkHooks(auto, provider.runtime))
    return provider


def _read_model_list(config: str | os.PathLike) -> list[dict]:
    data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    models = data.get("model_list") or []
    for entry in models:
        params = entry.get("litellm_params", {})
        for key, value in params.items():
            if isinstance(value, str) and value.startswith("os.environ/"):
                params[key] = os.environ.get(value.removeprefix("os.environ/"))
    return models
