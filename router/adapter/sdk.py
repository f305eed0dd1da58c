"""SDK wiring: after `install()`, `litellm.completion(model="auto")` and `litellm.acompletion(...)` are
routed by the policy, sync and async, streaming and not.

Sync calls run none of LiteLLM's async hooks, so the routing lives in a custom provider (`policy/`)
that decides and then calls the chosen model. Two small registrations steer `auto` to it: the alias
map (read by sync `completion`) and a deployment hook (async `acompletion` checks the provider
before it reads the alias map).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import litellm
import yaml
from litellm.integrations.custom_logger import CustomLogger
from litellm.llms.custom_llm import CustomLLM, CustomLLMError

from router.adapter.cache_backend import PolicyCache
from router.adapter.runtime import build_cache, install_cache
from router.adapter.upstreams import fill_upstream_defaults
from router.core.decide import route_body
from router.errors import RequestRejected
from router.policy.reload import PolicyFile
from router.settings import RouterSettings

PROVIDER = "policy"
# Request fields LiteLLM hands to a custom provider that are not model parameters.
_NOT_PARAMS = frozenset({"model", "messages", "stream"})


class PolicyProvider(CustomLLM):
    """The `policy/` provider: decide, then call the chosen target with the request's own parameters."""

    def __init__(self, policy: PolicyFile, router: litellm.Router | None):
        super().__init__()
        self.policy = policy
        self.router = router
        self.cache: PolicyCache | None = None

    def completion(self, model, messages, *args, optional_params=None, **kwargs):
        call = self._prepare(messages, optional_params, stream=False)
        return _tag(self._sync()(**call), call)

    def streaming(self, model, messages, *args, optional_params=None, **kwargs):
        call = self._prepare(messages, optional_params, stream=True)  # eager: a rejection raises here
        return iter(self._sync()(**call))

    async def acompletion(self, model, messages, *args, optional_params=None, **kwargs):
        call = self._prepare(messages, optional_params, stream=False)
        return _tag(await self._async()(**call), call)

    async def astreaming(self, model, messages, *args, optional_params=None, **kwargs):
        call = self._prepare(messages, optional_params, stream=True)
        async for chunk in await self._async()(**call):
            yield chunk

    def _prepare(self, messages: list, optional_params: Mapping | None, stream: bool) -> dict:
        """The inner call's arguments; the decision rides in its metadata, where the cache backend reads it."""
        compiled = self.policy.current  # one policy for the whole decision, even mid-reload
        params = {k: v for k, v in (optional_params or {}).items() if k not in _NOT_PARAMS}
        body = {"model": compiled.settings.auto_model, "messages": messages, **params}
        try:
            decision = route_body(compiled, body)
        except RequestRejected as exc:
            raise CustomLLMError(status_code=exc.status, message=exc.message) from None
        recorded = decision.as_dict()
        call = {"model": decision.target, "messages": messages, **params, "metadata": {"router": recorded}}
        if self.cache is not None:
            self.cache.opt_in(recorded, call)
        if stream:
            call["stream"] = True
        if decision.fallbacks:
            call["fallbacks"] = [{decision.target: list(decision.fallbacks)}] if self.router else list(decision.fallbacks)
        return call

    def _sync(self):
        return self.router.completion if self.router else litellm.completion

    def _async(self):
        return self.router.acompletion if self.router else litellm.acompletion


class _AutoToProvider(CustomLogger):
    """Async `acompletion(model="auto")` asks for a provider before reading the alias map; send it to ours."""

    def __init__(self, auto_model: str):
        super().__init__()
        self.auto_model = auto_model

    async def async_pre_call_deployment_hook(self, kwargs, call_type):
        if kwargs.get("model") == self.auto_model:
            kwargs = {**kwargs, "model": f"{PROVIDER}/{self.auto_model}"}
        return kwargs


def _tag(response, call: dict):
    """Leave the decision where SDK users can read it: `response._hidden_params["router"]`."""
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, dict):
        hidden["router"] = call["metadata"]["router"]
    return response


def install(policy: str | os.PathLike | None = None, *, config: str | os.PathLike | None = None,
            model_list: list[dict] | None = None, watch: bool = True) -> PolicyProvider:
    """Route `litellm.completion(model="auto")` (the policy's `settings.auto_model`) by `policy`
    (default: ROUTER_POLICY, else policies/default.yaml).

    Targets are model groups of `model_list`, or of the `model_list` in a proxy `config` file (whose
    `os.environ/` values are resolved, seed providers without a key going to the simulator); with
    neither, targets are LiteLLM model strings such as `deepseek/deepseek-chat`.
    Calling it again replaces the earlier installation.
    """
    settings = RouterSettings()
    source = PolicyFile(policy if policy is not None else settings.policy, interval=settings.reload_interval)
    if watch:
        source.watch()
    if config is not None:
        fill_upstream_defaults(settings.simulator_url)
        model_list = _read_model_list(config)
    provider = PolicyProvider(source, litellm.Router(model_list=model_list) if model_list else None)
    provider.cache = build_cache(source, lambda: provider.router)
    install_cache(provider.cache)
    auto = source.current.settings.auto_model
    litellm.custom_provider_map = [p for p in litellm.custom_provider_map if p["provider"] != PROVIDER]
    litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": provider})
    litellm.utils.custom_llm_setup()
    litellm.model_alias_map = {**litellm.model_alias_map, auto: f"{PROVIDER}/{auto}"}
    litellm.callbacks = [cb for cb in litellm.callbacks if not isinstance(cb, _AutoToProvider)]
    litellm.callbacks.append(_AutoToProvider(auto))
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
