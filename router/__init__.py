"""router: a configuration-driven routing plugin for LiteLLM.

Proxy: config.yaml registers the callback `router.adapter.handler`.
SDK:   `router.install("policies/default.yaml")`, then `litellm.completion(model="auto", ...)`.
Pure:  `load_policy`, `CompiledPolicy` and `route_body` decide without LiteLLM or any I/O.

`import router` does not import litellm; `install` loads it on first use.
"""

from router.core.decide import CompiledPolicy, Decision, decide, route_body
from router.core.request import Identity, RequestView, estimate_tokens
from router.engine.policy_file import PolicyFile
from router.errors import PolicyError, PolicyIssue, RequestRejected, RouterError
from router.policy.loader import load_policy, parse_policy
from router.policy.schema import Policy
from router.settings import RouterSettings

__all__ = [
    "CompiledPolicy",
    "Decision",
    "Identity",
    "Policy",
    "PolicyError",
    "PolicyFile",
    "PolicyIssue",
    "RequestRejected",
    "RequestView",
    "RouterError",
    "RouterSettings",
    "decide",
    "estimate_tokens",
    "install",
    "load_policy",
    "parse_policy",
    "route_body",
]


def __getattr__(name: str):
    if name == "install":
        from router.adapter.sdk import install

        return install
    raise AttributeError(f"module 'router' has no attribute {name!r}")
