"""The engine: the request pipeline and the stateful services it runs on (policy file, budgets,
ledger, model health, the runtime that keeps them in step with the state store). No litellm: the
adapter turns LiteLLM's calls into `Pipeline.prepare` and its events into the services' calls."""

from router.engine.pipeline import Admitted, Pipeline, Refused
from router.engine.policy_file import PolicyFile
from router.engine.record import DecisionRecord

__all__ = ["Admitted", "DecisionRecord", "Pipeline", "PolicyFile", "Refused"]
