"""The response cache as a LiteLLM cache backend (`litellm.cache = Cache(_backend=PolicyCache(...))`).

LiteLLM looks the cache up inside `acompletion`, after routing, and stores answers (streams once
complete) itself; it marks hits (`cache_hit`, zero cost, saved cost) and honours the per-request
`cache: {"no-cache": true}` / `{"no-store": true}` controls. The cache runs in LiteLLM's opt-in mode:
`opt_in` marks the requests the policy lets use it (`cache: {"use-cache": true}`) before routing,
so every other request skips LiteLLM's cache machinery (key hashing, serialising the answer) whole.
This class decides each request's key, scope and rule from the kwargs LiteLLM hands it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

from litellm.caching.base_cache import BaseCache

from router.adapter import common
from router.cache import keys
from router.cache.rules import CacheRule, cache_rules
from router.cache.service import CacheRequest, ResponseCache
from router.core.decide import CompiledPolicy
from router.core.request import Identity
from router.policy.crossref import RESERVED_ROUTE
from router.policy.reload import PolicyFile

log = logging.getLogger("router")
SDK_PROVIDER_PREFIX = "policy/"


class _Parts:
    """What the backend works with, kept out of LiteLLM's sight. Its `/cache/ping` masks and
    serialises `vars()` of the cache object recursively: through the embedder, the LRU, the vector
    index and the runtime that took minutes and gigabytes while the proxy stopped answering. An
    object without `__dict__` is shown by its repr instead."""

    __slots__ = ("service", "policy", "rules", "on_disconnect")

    def __init__(self, service: ResponseCache, policy: PolicyFile):
        self.service = service
        self.policy = policy
        self.rules: tuple[CompiledPolicy | None, dict[str, CacheRule]] = (None, {})
        self.on_disconnect = None  # the runtime's shutdown: LiteLLM's one call at the proxy's shutdown is ours

    def __repr__(self) -> str:
        return "<router response cache>"


class PolicyCache(BaseCache):
    def __init__(self, service: ResponseCache, policy: PolicyFile):
        super().__init__()
        self._parts = _Parts(service, policy)

    @property
    def service(self) -> ResponseCache:
        return self._parts.service

    @property
    def policy(self) -> PolicyFile:
        return self._parts.policy

    @property
    def on_disconnect(self):
        return self._parts.on_disconnect

    @on_disconnect.setter
    def on_disconnect(self, shutdown) -> None:
        self._parts.on_disconnect = shutdown

    async def disconnect(self):
        """LiteLLM calls this when the proxy shuts down (the default BaseCache raises)."""
        if self.on_disconnect is not None:
            await self.on_disconnect()

    # LiteLLM calls both forms; the work is blocking (store, embedding), so async runs it in a thread.
    async def async_get_cache(self, key, **kwargs):
        return await asyncio.to_thread(self.get_cache, key, **kwargs)

    async def async_set_cache(self, key, value, **kwargs):
        await asyncio.to_thread(self.set_cache, key, value, **kwargs)

    async def async_set_cache_pipeline(self, cache_list, **kwargs):
        for key, value in cache_list:
            await self.async_set_cache(key, value, **kwargs)

    def get_cache(self, key, **kwargs):
        request, decision = self._request(kwargs)
        if request is None:
            return None
        hit, _ = self.service.lookup(request)
        if decision is not None:
            decision["cache"] = hit.label if hit else "miss"
        if hit is None:
            return None
        if decision is not None and '"reasoning_content"' in hit.response:
            # LiteLLM streams a hit without it (its async stream conversion keeps content and tool
            # calls only): kept here, the adapter streams it first.
            decision["cached_reasoning"] = common.reasoning_text(json.loads(hit.response))
        return {"timestamp": hit.stored_at, "response": hit.response}  # the ledger records the saving

    def set_cache(self, key, value, **kwargs):
        request, _ = self._request(kwargs)
        if request is None:
            return
        response_json = value.get("response") if isinstance(value, Mapping) else value
        if not isinstance(response_json, str):
            response_json = json.dumps(response_json)
        self.service.save(request, response_json, json.loads(response_json))

    def opt_in(self, decision: dict, request: dict) -> None:
        """Before routing: let the request use the cache when the policy allows it, and say so. The
        parameters that make its key ride with the decision: LiteLLM's sync lookup hands the backend
        only the messages and the metadata."""
        params = keys.answer_params(request)
        if self._rule(decision["route"], params) is None:
            decision["cache"] = "off"
            return
        decision["cache_params"] = params
        controls = request.get("cache")
        if controls is None:
            request["cache"] = controls = {}
        if isinstance(controls, dict):
            controls["use-cache"] = True
            decision["cache"] = "off" if controls.get("no-cache") else "miss"

    def _rule(self, route: str, params: Mapping) -> CacheRule | None:
        rule = self._rules_for(self.policy.current).get(route)
        if rule is None or (rule.deterministic_only and not keys.is_deterministic(params)):
            return None
        return rule

    def _request(self, kwargs: Mapping) -> tuple[CacheRequest | None, dict | None]:
        """The cache request for a chat call, or None when this call must not use the cache."""
        model = str(kwargs.get("model") or "")
        messages = kwargs.get("messages")
        if model.startswith(SDK_PROVIDER_PREFIX) or not isinstance(messages, list):
            return None, None  # the SDK's outer `policy/auto` call: its inner call is the one cached
        metadata = _metadata(kwargs)
        decision = metadata.get("router") if isinstance(metadata.get("router"), dict) else None
        route = decision["route"] if decision else RESERVED_ROUTE
        params = decision["cache_params"] if decision and "cache_params" in decision else keys.answer_params(kwargs)
        rule = self._rule(route, params)
        if rule is None:
            return None, decision
        target = decision["target"] if decision else str(metadata.get("model_group") or model)
        return CacheRequest(f"{route}:{target}", _identity(decision, metadata), messages, params, rule), decision

    def _rules_for(self, compiled: CompiledPolicy) -> dict[str, CacheRule]:
        if self._parts.rules[0] is not compiled:
            self._parts.rules = (compiled, cache_rules(compiled.policy))
        return self._parts.rules[1]


def _metadata(kwargs: Mapping) -> dict:
    for name in ("metadata", "litellm_metadata"):
        value = kwargs.get(name)
        if isinstance(value, dict) and value:
            return value
    return {}


def _identity(decision: Mapping | None, metadata: Mapping) -> Identity:
    """Who the request is for: the identity the pre-call step recorded in the decision (the proxy's
    authentication, or the SDK's `install(identity=...)`); else LiteLLM's own key metadata, which a
    client cannot set (the proxy overwrites those keys)."""
    recorded = (decision or {}).get("identity")
    if isinstance(recorded, Mapping):
        return Identity(**{**recorded, "tags": tuple(recorded.get("tags") or ())})
    return Identity(
        key_hash=metadata.get("user_api_key_hash") or metadata.get("user_api_key"),
        team=metadata.get("user_api_key_team_id"),
        user=metadata.get("user_api_key_user_id"),
    )
