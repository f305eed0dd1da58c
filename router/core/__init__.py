"""The pure decision core: no I/O and no litellm import."""

from router.core.decide import CompiledPolicy, Decision, decide, route_body
from router.core.request import Identity, RequestView, estimate_tokens

__all__ = ["CompiledPolicy", "Decision", "Identity", "RequestView", "decide", "estimate_tokens", "route_body"]
