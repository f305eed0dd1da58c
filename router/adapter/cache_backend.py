"""The response cache as a LiteLLM cache backend (`litellm.cache = Cache(_backend=PolicyCache(...))`).

The pipeline looks a routed request up itself, on the pre-call path, and its record says what it
found (router.engine.pipeline). LiteLLM then serves a hit inside `acompletion` (it marks it:
`cache_hit`, zero cost, saved cost) by asking this backend for the answer the record names, and
stores answers (streams once complete) through it, under the key the pipeline worked out. The cache
runs in LiteLLM's opt-in mode: common.apply_admitted marks the requests the policy lets use it
(`cache: {"use-cache": true}`), turns LiteLLM's lookup off for the rest and for misses, and hands
it the key so that it never hashes a request itself. A chat call no pipeline saw (the SDK calling a
model by name) is looked up here, from the kwargs LiteLLM hands the backend.
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

    __slots__ = ("inline", "on_disconnect", "policy", "rules", "service")

    def __init__(self, service: ResponseCache, policy: PolicyFile, rules: RuleBook, inline: bool):
        self.service = service
        self.policy = policy
        self.rules = rules
        self.inline = inline
        self.on_disconnect = None  # the runtime's shutdown: LiteLLM's one call at the proxy's shutdown is ours

    def __repr__(self) -> str:
        return "<router response cache>"


class PolicyCache(BaseCache):
    """`inline`: the cache's work is quick enough to run on the event loop (a local store and
    embedder); otherwise it runs on a worker thread."""

    def __init__(self, service: ResponseCache, policy: PolicyFile, rules: RuleBook, inline: bool = False):
        super().__init__()
        self._parts = _Parts(service, policy, rules, inline)

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

    # LiteLLM calls both forms. A request the pipeline looked up needs only its answer fetched
    # (from the in-process tier, where the lookup left it); the rest may block (store, embedding).
    async def async_get_cache(self, key, **kwargs):
        record = record_of(kwargs)
        if record is not None:
            return self._found(record)
        if self._parts.inline:
            return self.get_cache(key, **kwargs)
        return await asyncio.to_thread(self.get_cache, key, **kwargs)

    async def async_set_cache(self, key, value, **kwargs):
        if self._parts.inline:
            self.set_cache(key, value, **kwargs)
        else:
            await asyncio.to_thread(self.set_cache, key, value, **kwargs)

    async def async_set_cache_pipeline(self, cache_list, **kwargs):
        for key, value in cache_list:
            await self.async_set_cache(key, value, **kwargs)

    def get_cache(self, key, **kwargs):
        record = record_of(kwargs)
        if record is not None:
            return self._found(record)
        request = self._request(kwargs)
        if request is None:
            return None
        hit, _ = self.service.lookup(request)
        return None if hit is None else {"timestamp": hit.stored_at, "response": hit.response}

    def _found(self, record: DecisionRecord):
        """The answer the pipeline's lookup found for the request, if any."""
        source = record.get("cache_from")
        stored = self.service.answer(source) if source else None
        if stored is None:
            if source:
                record["cache"] = "miss"  # gone since the lookup: the model answers after all
            return None
        if '"reasoning_content"' in stored[1]:
            # LiteLLM streams a hit without it (its async stream conversion keeps content and tool
            # calls only): kept here, the adapter streams it first.
            record["cached_reasoning"] = reasoning_text(json.loads(stored[1])) or ""
        return {"timestamp": stored[0], "response": stored[1]}  # the ledger records the saving

    def set_cache(self, key, value, **kwargs):
        response_json = value.get("response") if isinstance(value, Mapping) else value
        if not isinstance(response_json, str):
            response_json = json.dumps(response_json)
        record = record_of(kwargs)
        if record is None:
            request = self._request(kwargs)
            if request is not None:
                self.service.save(request, response_json, json.loads(response_json))
            return
        key = record.get("cache_key")
        if key is None:
            return  # the policy does not cache this request (the client's `use-cache` does not change that)
        response = json.loads(response_json)
        if self.service.save_pending(key, response_json, response) is None:
            request = self._recorded_request(record, kwargs)
            if request is not None:
                self.service.save(request, response_json, response, key)

    def _recorded_request(self, record: DecisionRecord, kwargs: Mapping) -> CacheRequest | None:
        """The cache request of a routed call whose lookup the cache no longer remembers."""
        messages, params = kwargs.get("messages"), record.get("cache_params") or {}
        rule = self._parts.rules.rule(self.policy.current.policy, record["route"], params)
        if rule is None or not isinstance(messages, list):
            return None
        return CacheRequest(f"{record['route']}:{record['target']}", identity_of(record), messages, params, rule)

    def _request(self, kwargs: Mapping) -> CacheRequest | None:
        """The cache request of a chat call no pipeline saw (the SDK calling a model by name), or
        None when it must not use the cache."""
        model = str(kwargs.get("model") or "")
        messages = kwargs.get("messages")
        if model.startswith(SDK_PROVIDER_PREFIX) or not isinstance(messages, list):
            return None  # the SDK's outer `policy/auto` call: its inner call is the one cached
        metadata = metadata_of(kwargs)
        params = keys.answer_params(kwargs)
        rule = self._parts.rules.rule(self.policy.current.policy, EXPLICIT_ROUTE, params)
        if rule is None:
            return None
        target = str(metadata.get(MODEL_GROUP) or model)
        return CacheRequest(f"{EXPLICIT_ROUTE}:{target}", _identity(metadata), messages, params, rule)


def _identity(metadata: Mapping) -> Identity:
    """Who a call no pipeline saw is for: LiteLLM's own key metadata, which a client cannot set
    (the proxy overwrites those keys)."""
    return Identity(
        key_hash=metadata.get(KEY_HASH) or metadata.get(KEY_RAW),
        team=metadata.get(KEY_TEAM),
        user=metadata.get(KEY_USER),
    )
