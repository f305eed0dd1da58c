"""Identity without a database: API keys listed in a YAML file, for `general_settings.custom_auth`.

LiteLLM keeps virtual keys, teams and users in Postgres. Where there is none, name this function
in config.yaml (`custom_auth: router.adapter.auth.authenticate`) and list the keys in the file that
ROUTER_KEYS (or `callback_settings.router.keys`) names:

    keys:
      - {key: "${TEAM_A_KEY}", team: team-a, user: alice}
      - {key_sha256: 9f86d0..., team: team-b}

The master key (LITELLM_MASTER_KEY) stays valid. Budgets and cache scopes then key on the team and
on the key's hash, which the client cannot choose.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

import litellm
from litellm.proxy._types import LitellmUserRoles, ProxyException, UserAPIKeyAuth

from router.policy.source import parse as parse_yaml
from router.settings import RouterSettings


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@lru_cache(maxsize=1)
def _key_table(path: str) -> dict[str, dict]:
    located = parse_yaml(open(path, encoding="utf-8").read(), path)
    if located.issues:
        raise ValueError("; ".join(map(str, located.issues)))
    table = {}
    for entry in (located.data or {}).get("keys", []):
        digest = entry.get("key_sha256") or _sha256(str(entry["key"]))
        table[digest] = {"team_id": entry.get("team"), "user_id": entry.get("user")}
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
        raise ProxyException(message="no API key: send 'Authorization: Bearer <key>'", type="auth_error",
                             param="api_key", code=401)
    digest = _sha256(api_key)
    master = _master_digest()
    if master and digest == master:
        return UserAPIKeyAuth(api_key=digest, user_role=LitellmUserRoles.PROXY_ADMIN)
    keys = _keys_file()
    identity = _key_table(keys).get(digest) if keys else None
    if identity is None:
        raise ProxyException(message="invalid API key", type="auth_error", param="api_key", code=401)
    return UserAPIKeyAuth(api_key=digest, **identity)
