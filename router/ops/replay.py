"""Recorded traffic through a policy, offline: every request re-decided by the same pipeline the proxy
runs (routing, affinity, shifts, budgets, the response cache), on a memory store whose clock reads
the recorded times, so TTLs, budget windows and shift timers pass as they did.

- Tokens are the recorded usage, priced at the policy's prices. Where the model changes, output is
  scaled by what the traffic shows of each model (`OutputScale`): visible output by the ratio of
  the two models' mean visible output, reasoning by the ratio of their mean reasoning (or the new
  model's mean when the old one did not reason); cached input is dropped (a provider's prompt cache
  does not follow a request to another). A request recorded without usage gets the router's prompt
  estimate and the new model's mean output (the policy's `default_output_tokens` when unseen).
- Cache hits are what the policy's cache would have served in time order, exact and semantic.
- Model health is the recording's: each request's latency and error count for the model group
  that served it then, so shifts start and end as the recorded figures say.
- A request that failed then fails again and costs nothing."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from router.cache.embedders import Embedder, EmbedderUnavailable, local_embedder
from router.cache.keys import semantic_text
from router.core.decide import CompiledPolicy
from router.core.pricing import token_counts
from router.engine.accounting import Accounting
from router.engine.budget_book import BudgetBook
from router.engine.health import SHIFT_LOG, Health
from router.engine.ledger import Ledger
from router.engine.pipeline import Admitted, Pipeline, Refused
from router.engine.policy_file import PolicyFile
from router.engine.runtime import build_pipeline
from router.errors import RequestRejected
from router.ops.recorded import Recorded, Traffic
from router.state.memory import MemoryStore

MIN_SAMPLES = 20  # a model's mean output counts from this many recorded answers
TICK = 1.0  # seconds of recorded time between health evaluations (the proxy's sync loop: 0.5 s)
_ANSWER = "(replayed)"
_PREFETCH = 256  # requests whose texts are embedded in one batch, for embedders that batch


class Clock:
    """The replay's time: the recorded moment of the request being replayed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Tap(Ledger):
    """The ledger records of the replay, kept in memory instead of written."""

    def __init__(self, store: MemoryStore):
        super().__init__(store)
        self.last: dict = {}

    def write(self, record: dict) -> None:
        self.last = record


@dataclass
class Outcome:
    item: Recorded
    route: str | None
    target: str | None  # the model group that answers: the one chosen (after downgrades and shifts), or the
    # fallback that answered when the recording says the chosen one failed
    outcome: str  # ok, error, budget_rejected, refused
    cost_usd: float = 0.0
    cache: str = "off"
    saved_usd: float = 0.0
    decided_by: str | None = None
    downgraded_by: str | None = None
    warned_by: tuple[str, ...] = ()
    rejected_by: str | None = None
    why: str = ""  # a refusal's message
    prompt_tokens: int = 0
    output_tokens: int = 0


@dataclass
class OutputScale:
    """Mean visible and reasoning output per model group, from the recorded answers."""

    visible: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    reasoning: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, items: list[Recorded]) -> OutputScale:
        scale = cls()
        for item in items:
            if item.outcome == "ok" and item.usage and item.target and not _was_hit(item.cache):
                tokens = token_counts(item.usage)
                scale.visible[item.target].append(tokens.completion - tokens.reasoning)
                scale.reasoning[item.target].append(tokens.reasoning)
        return scale

    def mean(self, kind: dict[str, list[int]], group: str | None) -> float | None:
        samples = kind.get(group or "", [])
        return sum(samples) / len(samples) if len(samples) >= MIN_SAMPLES else None

    def usage(self, item: Recorded, target: str, prompt_estimate: int, default_output: int) -> dict:
        """The usage `item` would have had from `target`."""
        if item.usage is not None and target == item.target:
            return item.usage
        new_visible, new_reasoning = self.mean(self.visible, target), self.mean(self.reasoning, target)
        if item.usage is None:
            visible = round(new_visible) if new_visible is not None else default_output
            reasoning = round(new_reasoning or 0)
            prompt = prompt_estimate
        else:
            then = token_counts(item.usage)
            prompt, reasoning_then, visible_then = then.prompt, then.reasoning, then.completion - then.reasoning
            old_visible, old_reasoning = self.mean(self.visible, item.target), self.mean(self.reasoning, item.target)
            visible = round(visible_then * _ratio(new_visible, old_visible))
            if old_reasoning:
                reasoning = round(reasoning_then * _ratio(new_reasoning, old_reasoning))
            else:
                reasoning = round(new_reasoning or 0)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": visible + reasoning,
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }


def _was_hit(cache: str | None) -> bool:
    """The recorded answer came from the router's response cache (exact, or semantic;score=...)."""
    return cache is not None and (cache == "exact" or cache.startswith("semantic"))


def _ratio(new: float | None, old: float | None) -> float:
    return new / old if new is not None and old else 1.0


class _Batched:
    """An embedder that embeds the texts of the requests ahead in batches (`prefetch`), for
    embedders with `embed_many` (the full MiniLM); the rest embed one text at a time anyway."""

    def __init__(self, inner: Embedder):
        self.inner = inner
        self.name = inner.name
        self._ready: dict[str, object] = {}

    def prefetch(self, texts: list[str]) -> None:
        """Embed the next requests' texts; what the last batch's requests did not ask for (an exact
        hit needs none) is dropped."""
        many = getattr(self.inner, "embed_many", None)
        wanted = [t for t in dict.fromkeys(texts) if t]
        self._ready = dict(zip(wanted, many(wanted))) if many is not None and wanted else {}

    def embed(self, text: str):
        found = self._ready.pop(text, None)
        return found if found is not None else self.inner.embed(text)


class Replay:
    def __init__(self, path: str, seed: int = 0):
        self.clock = Clock()
        self.store = MemoryStore(self.clock)
        self.embedders: list[_Batched] = []
        self._offline: list[str] = []  # embedders the policy names that only the proxy can call
        self.policy = PolicyFile(path)
        self.health = Health(self.store, lambda: self.policy.current, self.clock, random.Random(seed))
        self.ledger = _Tap(self.store)
        accounting = Accounting(self.policy, BudgetBook(self.store, clock=self.clock), self.ledger, clock=self.clock)
        self.pipeline: Pipeline = build_pipeline(self.policy, self.store, self._embedder, self.health, accounting)
        if self._offline:
            raise EmbedderUnavailable(
                f"{path}: embedder '{self._offline[0]}' is a model group of the proxy, and a replay runs offline: "
                "replay with a copy of the policy that names `local` or `minilm`"
            )
        self.compiled: CompiledPolicy = self.policy.current  # compiled with the embedder the pipeline loaded
        self._ticked = 0.0

    def _embedder(self, name: str) -> Embedder:
        found = local_embedder(name)
        if found is None:
            self._offline.append(name)
            raise EmbedderUnavailable(f"'{name}' is a model group of the proxy")
        batched = _Batched(found)
        self.embedders.append(batched)
        return batched

    def run(self, traffic: Traffic, progress: Callable[[int, int], None] | None = None) -> list[Outcome]:
        scale = OutputScale.of(traffic.items)
        outcomes = []
        for n, item in enumerate(traffic.items):
            if n % _PREFETCH == 0:
                self._prefetch(traffic.items[n : n + _PREFETCH])
            outcomes.append(self.one(item, scale))
            if progress is not None and ((n + 1) % 1000 == 0 or n + 1 == len(traffic.items)):
                progress(n + 1, len(traffic.items))
        self.health.tick()
        return outcomes

    def _prefetch(self, items: list[Recorded]) -> None:
        if self.embedders:
            texts = [semantic_text(item.body["messages"]) or "" for item in items]
            for embedder in self.embedders:
                embedder.prefetch(texts)

    def one(self, item: Recorded, scale: OutputScale) -> Outcome:
        self.clock.now = item.t
        if item.t - self._ticked >= TICK:
            self._ticked = item.t
            self.health.tick()
        self._observe(item)
        try:
            admitted = self.pipeline.prepare(item.body, item.identity)
        except Refused as exc:
            return self._refused(item, exc)
        except RequestRejected as exc:
            return Outcome(item, None, None, "refused", why=str(exc))
        finally:
            self.pipeline.conversations.flush()  # the turn's affinity, at once: its TTL runs on recorded time
        return self._answer(item, admitted, scale)

    def _observe(self, item: Recorded) -> None:
        """What the recording says of the model that served it: the figures shifts work from."""
        if item.target and item.outcome in ("ok", "error") and not _was_hit(item.cache):
            error = item.outcome == "error"
            self.health.record(item.target, None, None if error else item.latency, error=error)

    def _refused(self, item: Recorded, exc: Refused) -> Outcome:
        record = exc.record
        if exc.exceeded is not None:
            return Outcome(
                item,
                record.get("route"),
                record.get("target"),
                "budget_rejected",
                rejected_by=exc.exceeded.budget.name,
                why=str(exc),
            )
        return Outcome(item, record.get("route"), record.get("target"), "refused", why=str(exc))

    def _answer(self, item: Recorded, admitted: Admitted, scale: OutputScale) -> Outcome:
        record, decision = admitted.record, admitted.decision
        accounting = self.pipeline.accounting
        if item.outcome == "error":
            accounting.on_failure(record)
        else:
            default = self.compiled.settings.default_output_tokens
            # The group chosen then failed and a fallback answered: asked of it again, it fails again.
            served = item.target if item.asked == decision.target and item.target else decision.target
            usage = scale.usage(item, served, decision.prompt_tokens, default)
            response = {"usage": usage, "choices": [_choice()]}
            hit = record.get("cache") not in (None, "off", "miss")
            accounting.on_success(record, response, served, hit, None, item.latency or 0.0)
            cache = self.pipeline.cache
            if admitted.cacheable and not hit and cache is not None and record.get("cache_key"):
                cache.save_pending(record["cache_key"], json.dumps(response), response)
        written = self.ledger.last
        tokens = written.get("tokens") or {}
        return Outcome(
            item,
            decision.route,
            written.get("served") or decision.target,
            written.get("outcome", "ok"),
            cost_usd=float(written.get("cost_usd") or 0.0),
            cache=str(record.get("cache", "off")),
            saved_usd=float(written.get("saved_usd") or 0.0),
            decided_by=written.get("decided_by"),
            downgraded_by=record.get("downgraded_by"),
            warned_by=tuple(record.get("budget_warnings") or ()),
            prompt_tokens=int(tokens.get("prompt") or 0),
            output_tokens=int(tokens.get("completion") or 0),
        )

    def shifts(self) -> list[dict]:
        """The shifts' changes of phase, in order: {t, rule, watch, from, to}."""
        return [json.loads(raw) for _, raw in self.store.read(SHIFT_LOG, None, 1_000_000)]


def _choice() -> dict:
    return {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": _ANSWER}}
