"""The policy file: schema, and loading with located errors (hot reload: router.engine.policy_file)."""

from router.policy.loader import load_policy, parse_policy
from router.policy.schema import Policy

__all__ = ["Policy", "load_policy", "parse_policy"]
