"""The LiteLLM proxy callback: route `auto` requests by the policy and explain every decision in headers."""

from __future__ import annotations

import logging

import litellm
from fastapi import HTTPException
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import UserAPIKeyAuth

from router.adapter.common import apply_decision, decision_headers, decision_of
from router.adapter.cache_backend import PolicyCache
from router.adapter.runtime import build_cache, install_cache
from router.adapter.upstreams import fill_upstream_defaults
from router.core.decide import route_body
from router.core.request import Identity
from router.errors import RequestRejected
from router.policy.reload import PolicyFile
from router.settings import RouterSettings

log = logging.getLogger("router")
_CHAT_CALLS = frozenset({"completion", "acompletion"})


class PolicyRouter(CustomLogger):
    """Registered in config.yaml as `router.adapter.handler`."""

    def __init__(self, policy: PolicyFile, cache: PolicyCache | None):
        super().__init__()
        self.policy = policy
        self.cache = cache

    # The proxy calls this only when the class itself defines it (LITELLM.md), so it stays here.
    async def async_pre_call_hook(self, user_api_key_dict: UserAPIKeyAuth, cache, data: dict, call_type):
        if call_type not in _CHAT_CALLS:
            return data
        try:
            decision = route_body(self.policy.current, data, _identity(user_api_key_dict))
        except RequestRejected as exc:
            raise HTTPException(status_code=exc.status, detail=exc.message) from None
        apply_decision(decision, data)
        if self.cache is not None:
            self.cache.opt_in(decision_of(data), data)
        return data

    async def async_post_call_response_headers_hook(
        self, data, user_api_key_dict, response, request_headers=None, litellm_call_info=None
    ):
        decision = decision_of(data)
        return decision_headers(decision) if decision else None


def _identity(auth: UserAPIKeyAuth | None) -> Identity:
    if auth is None:
        return Identity()
    return Identity(key_hash=auth.api_key, team=auth.team_id, user=auth.user_id)


def build_handler() -> PolicyRouter:
    settings = RouterSettings(**(litellm.callback_settings or {}).get("router", {}))
    _ensure_log_output()
    for note in fill_upstream_defaults(settings.simulator_url):
        log.info(note)
    policy = PolicyFile(settings.policy, interval=settings.reload_interval)
    policy.watch()
    log.info("policy %s loaded: %d routes, %d models", settings.policy, len(policy.current.routes), len(policy.current.policy.models))
    cache = build_cache(policy, _proxy_router)
    install_cache(cache)
    return PolicyRouter(policy, cache)


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
