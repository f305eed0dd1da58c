"""Identity without a database: API keys listed in a YAML file, for `general_settings.custom_auth`.

LiteLLM keeps virtual keys, teams and users in Postgres. Where there is none, name this function
in config.yaml (`custom_auth: router.adapter.auth.authenticate`) and list the keys in the file that
ROUTER_KEYS (or `callback_settings.router.keys`) names:

    keys:
      - {key: "${TEAM_A_KEY}", team: team-a, user: alice, alias: alice-laptop}
      - {key_sha256: 9f86d0..., team: team-b, tags: [free], metadata: {tier: free}}

`alias`, `tags` and `metadata` are the key's own: routes' `when` and the policy's `access` rules
read them as the sender's identity, as they read a LiteLLM virtual key's.

The master key (LITELLM_MASTER_KEY) stays valid and reaches every route. Tenant keys reach only the
routes the policy governs (TENANT_ROUTES): every other LiteLLM route either spends money outside the
policy (text completions, embeddings, responses, messages, images, audio, pass-through) or manages
the proxy. Budgets and cache scopes key on the team and on the key's hash, which the client cannot
choose.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

import litellm
from litellm.proxy._types import LitellmUserRoles, ProxyException, UserAPIKeyAuth
from litellm.proxy.auth.auth_utils import get_request_route, get_request_route_template

from router.policy.source import parse as parse_yaml
from router.settings import RouterSettings

CHAT_ROUTES = (
    "/v1/chat/completions",
    "/chat/completions",
    "/openai/deployments/{model:path}/chat/completions",
    "/engines/{model:path}/chat/completions",
)
# FastAPI route templates: chat completions, which the policy routes, budgets and records, and the
# list of model names.
TENANT_ROUTES = frozenset({*CHAT_ROUTES, "/v1/models", "/models"})
_REFUSED = (
    " is not governed by the routing policy: tenant keys may use only POST "
    + ", ".join(r.replace(":path", "") for r in CHAT_ROUTES)
    + " and GET /v1/models"
)
# LiteLLM's management APIs that live in its database: without one they fail with a 500.
_DATABASE_ROUTES = (
    "/key/",
    "/user/",
    "/team/",
    "/organization/",
    "/customer/",
    "/end_user/",
    "/spend/",
    "/global/spend",
    "/budget/",
)
# LiteLLM's cache APIs that only its Redis cache supports: any other answers them with a 500.
_REDIS_CACHE_ROUTES = frozenset({"/cache/delete", "/cache/redis/info", "/cache/flushall"})


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@lru_cache(maxsize=1)
def _key_table(path: str) -> dict[str, dict]:
    with open(path, encoding="utf-8") as file:
        located = parse_yaml(file.read(), path)
    if located.issues:
        raise ValueError("; ".join(map(str, located.issues)))
    table = {}
    data = located.data if isinstance(located.data, dict) else {}
    for entry in data.get("keys", []):
        digest = entry.get("key_sha256") or _sha256(str(entry["key"]))
        metadata = dict(entry.get("metadata") or {})
        if entry.get("tags"):
            metadata["tags"] = list(entry["tags"])
        table[digest] = {
            "team_id": entry.get("team"),
            "user_id": entry.get("user"),
            "key_alias": entry.get("alias"),
            "metadata": metadata,
        }
    return table


@lru_cache(maxsize=1)
def _master_digest() -> str | None:
    master = os.environ.get("LITELLM_MASTER_KEY")
    return _sha256(master) if master else None


@lru_cache(maxsize=1)
def _keys_file() -> str | None:
    """Read once: the proxy's settings do not change while it runs."""
    return RouterSettings(**(litellm.callback_settings or {}).get("router", {})).keys


async def authenticate(request, api_key: str) -> UserAPIKeyAuth:
    if not api_key:
        raise ProxyException(
            message="no API key: send 'Authorization: Bearer <key>'", type="auth_error", param="api_key", code=401
        )
    digest = _sha256(api_key)
    master = _master_digest()
    route = get_request_route_template(request) or get_request_route(request)
    if master and digest == master:
        _check_supported(route)
        return UserAPIKeyAuth(api_key=digest, user_role=LitellmUserRoles.PROXY_ADMIN)
    keys = _keys_file()
    identity = _key_table(keys).get(digest) if keys else None
    if identity is None:
        raise ProxyException(message="invalid API key", type="auth_error", param="api_key", code=401)
    if route not in TENANT_ROUTES:
        raise ProxyException(message=route + _REFUSED, type="auth_error", param="route", code=403)
    return UserAPIKeyAuth(api_key=digest, **identity)


def _check_supported(route: str) -> None:
    """Refuse, as a client error, the admin routes this proxy cannot serve (LiteLLM answers 500)."""
    from litellm.proxy import proxy_server

    if proxy_server.prisma_client is None and route.startswith(_DATABASE_ROUTES):
        raise ProxyException(
            message=f"{route} needs LiteLLM's database (DATABASE_URL), and this proxy runs without one: "
            "its API keys are the master key and the file ROUTER_KEYS names",
            type="not_found_error",
            param="route",
            code=404,
        )
    if route in _REDIS_CACHE_ROUTES and litellm.cache is not None and litellm.cache.type != "redis":
        raise ProxyException(
            message=f"{route} works with LiteLLM's Redis cache only; this proxy's response cache is "
            f"'{litellm.cache.type}' (the router's: its entries expire after the policy's cache ttl)",
            type="invalid_request_error",
            param="route",
            code=400,
        )
