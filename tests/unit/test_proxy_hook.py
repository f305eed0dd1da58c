"""The proxy hook's first step: calls other than chat, which the policy neither prices nor budgets,
are for the proxy's admins only (with LiteLLM's own virtual keys nothing else stops a tenant)."""

from __future__ import annotations

import anyio
import pytest
from fastapi import HTTPException
from litellm.proxy._types import LitellmUserRoles, UserAPIKeyAuth

from router.adapter.proxy import PolicyRouter

HOOK = PolicyRouter(policy=None, runtime=None)  # neither is reached for a call other than chat


def pre_call(auth: UserAPIKeyAuth, call_type: str) -> dict:
    data = {"model": "gpt-4o", "input": "hi"}
    return anyio.run(HOOK.async_pre_call_hook, auth, None, data, call_type)


@pytest.mark.parametrize(
    "call_type",
    [
        "aembedding",
        "atext_completion",
        "aresponses",
        "anthropic_messages",
        "aimage_generation",
        "pass_through_endpoint",
    ],
)
def test_calls_other_than_chat_are_refused_to_tenant_keys(call_type):
    with pytest.raises(HTTPException) as caught:
        pre_call(UserAPIKeyAuth(api_key="hash", team_id="team-a", user_role=LitellmUserRoles.INTERNAL_USER), call_type)
    assert caught.value.status_code == 403 and call_type in caught.value.detail


def test_the_proxy_admin_may_make_them():
    admin = UserAPIKeyAuth(api_key="hash", user_role=LitellmUserRoles.PROXY_ADMIN)
    assert pre_call(admin, "aembedding") == {"model": "gpt-4o", "input": "hi"}
