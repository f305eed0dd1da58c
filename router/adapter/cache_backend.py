"""The response cache as a LiteLLM cache backend (`litellm.cache = Cache(_backend=PolicyCache(...))`).

LiteLLM looks the cache up inside `acompletion`, after routing, and stores answers (streams once
complete) itself; it marks hits (`cache_hit`, zero cost, saved cost) and honours the per-request
`cache: {"no-cache": true}` / `{"no-store": true}` controls. The cache runs in LiteLLM's opt-in mode:
the pipeline marks the requests the policy lets use it (`cache: {"use-cache": true}`, written by
common.apply_admitted), so every other request skips LiteLLM's cache machinery (key hashing,
serialising the answer) whole. This class decides each request's key, scope and rule from the
kwargs LiteLLM hands it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping

from router.adapter.common import metadata_of, record_of
from router.adapter.litellm_api import KEY_HASH, KEY_RAW, KEY_TEAM, KEY_USER, MODEL_GROUP, BaseCache
from router.cache import keys
from router.cache.rules import RuleBook
from router.cache.service import CacheRequest, ResponseCache
from router.core.pricing import reasoning_text
from router.core.request import Identity
from router.engine.policy_file import PolicyFile
from router.engine.record import DecisionRecord, identity_of
from router.policy.crossref import EXPLICIT_ROUTE

log = logging.getLogger("router")
SDK_PROVIDER_PREFIX = "policy/"


class _Parts:
    """What the backend works with, kept out of LiteLLM's sight. Its `/cache/ping` masks and
    serialises `vars()` of the cache object recursively: through the embedder, the LRU, the vector
    index and the runtime that took minutes and gigabytes while the proxy stopped answering. An
    object without `__dict__` is shown by its repr instead."""

    __slots__ = ("on_disconnect", "policy", "rules", "service")

    def __init__(self, service: ResponseCache, policy: PolicyFile, rules: RuleBook):
        self.service = service
        self.policy = policy
        self.rules = rules
        self.on_disconnect = None  # the runtime's shutdown: LiteLLM's one call at the proxy's shutdown is ours

    def __repr__(self) -> str:
        return "<router response cache>"


class PolicyCache(BaseCache):
    def __init__(self, service: ResponseCache, policy: PolicyFile, rules: RuleBook):
        super().__init__()
        self._parts = _Parts(service, policy, rules)

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
            decision["cached_reasoning"] = reasoning_text(json.loads(hit.response)) or ""
        return {"timestamp": hit.stored_at, "response": hit.response}  # the ledger records the saving

    def set_cache(self, key, value, **kwargs):
        request, _ = self._request(kwargs)
        if request is None:
            return
        response_json = value.get("response") if isinstance(value, Mapping) else value
        if not isinstance(response_json, str):
            response_json = json.dumps(response_json)
        self.service.save(request, response_json, json.loads(response_json))

    def _request(self, kwargs: Mapping) -> tuple[CacheRequest | None, DecisionRecord | None]:
        """The cache request for a chat call, or None when this call must not use the cache."""
        model = str(kwargs.get("model") or "")
        messages = kwargs.get("messages")
        if model.startswith(SDK_PROVIDER_PREFIX) or not isinstance(messages, list):
            return None, None  # the SDK's outer `policy/auto` call: its inner call is the one cached
        metadata = metadata_of(kwargs)
        decision = record_of(kwargs)
        route = decision["route"] if decision else EXPLICIT_ROUTE
        params = decision["cache_params"] if decision and "cache_params" in decision else keys.answer_params(kwargs)
        rule = self._parts.rules.rule(self.policy.current.policy, route, params)
        if rule is None:
            return None, decision
        target = decision["target"] if decision else str(metadata.get(MODEL_GROUP) or model)
        return CacheRequest(f"{route}:{target}", _identity(decision, metadata), messages, params, rule), decision


def _identity(decision: DecisionRecord | None, metadata: Mapping) -> Identity:
    """Who the request is for: the identity the pipeline recorded (the proxy's authentication, or the
    SDK's `install(identity=...)`); for a call no pipeline saw, LiteLLM's own key metadata, which a
    client cannot set (the proxy overwrites those keys)."""
    if decision is not None:
        return identity_of(decision)
    return Identity(
        key_hash=metadata.get(KEY_HASH) or metadata.get(KEY_RAW),
        team=metadata.get(KEY_TEAM),
        user=metadata.get(KEY_USER),
    )
