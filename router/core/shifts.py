"""Timed traffic shifts: when a watched model's figures cross a rule's threshold, its traffic moves
to the rule's targets for a hold time; then a probe share goes back, and the shift ends only when
the probe is well under the threshold (hysteresis), or holds again.

Pure: `step` moves one rule's state given the figures; `reroute` applies the active shifts and the
providers' retry-after holds to one routing decision.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from router.core.decide import EXPLICIT_ROUTE, CompiledPolicy, Decision
from router.core.windows import Figures
from router.errors import RequestRejected
from router.policy.schema import Shift

NORMAL, SHIFTED, PROBING = "normal", "shifted", "probing"


@dataclass(frozen=True)
class ShiftState:
    phase: str = NORMAL
    since: float = 0.0  # when this phase began; figures from before it do not count
    until: float = 0.0  # the end of a hold
    value: float | None = None  # the figure behind the last change
    reason: str = ""
    count: int = 0  # how many times the rule has shifted traffic

    def dumps(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()

    @classmethod
    def loads(cls, raw: bytes | None) -> ShiftState:
        if not raw:
            return cls()
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(raw).items() if k in fields})


def step(rule: Shift, state: ShiftState, figures_since: Callable[[float], Figures], now: float) -> ShiftState:
    """The rule's next state. `figures_since(t)` gives the watched model's figures from t to now."""
    trigger = rule.when
    metric, threshold = trigger.metric, trigger.threshold
    if state.phase == SHIFTED:
        if now < state.until:
            return state
        return dataclasses.replace(
            state,
            phase=PROBING,
            since=now,
            until=0.0,
            reason=f"hold ended: {rule.probe.percent:g}% of traffic probes '{rule.watched}'",
        )
    if state.phase == PROBING:
        figures = figures_since(state.since)
        value, samples = figures.value(metric), figures.samples(metric)
        timed_out = now - state.since >= (rule.probe.max_duration or trigger.window)
        if not timed_out and (samples < (rule.probe.min_samples or 2 * trigger.min_samples) or value is None):
            return state
        if value is None:
            return ShiftState(
                NORMAL, now, 0.0, None, f"no probe traffic in {now - state.since:.0f}s: the shift ends", state.count
            )
        if value <= threshold * rule.probe.recover_below:
            return ShiftState(
                NORMAL, now, 0.0, value, f"recovered: probe {_show(metric, value)} over {samples} samples", state.count
            )
        return ShiftState(
            SHIFTED,
            now,
            now + rule.hold,
            value,
            f"probe {_show(metric, value)}, not under {_show(metric, threshold * rule.probe.recover_below)}",
            state.count + 1,
        )
    figures = figures_since(max(now - trigger.window, state.since))
    value, samples = figures.value(metric), figures.samples(metric)
    if samples >= trigger.min_samples and value is not None and value > threshold:
        return ShiftState(
            SHIFTED,
            now,
            now + rule.hold,
            value,
            f"{metric} {_show(metric, value)} > {_show(metric, threshold)} over {samples} samples",
            state.count + 1,
        )
    return state


def _show(metric: str, value: float) -> str:
    return f"{value:.0%}" if metric == "error_rate" else f"{value:.2f}s"


@dataclass(frozen=True)
class Active:
    """A rule that currently moves traffic, as the request path sees it."""

    rule: str
    watch: str  # policy model names
    to: tuple[str, ...]
    percent: float
    probe_percent: float
    phase: str
    reason: str
    moves_named: bool  # requests that name the watched model move too


def active_shifts(compiled: CompiledPolicy, states: Mapping[str, ShiftState]) -> dict[str, Active]:
    """Watched model -> its active shift (the first rule, when several watch one model; a rule that
    watches a region moves each of its models)."""
    active: dict[str, Active] = {}
    for rule in compiled.policy.shifts:
        state = states.get(rule.key)
        if state is None or state.phase == NORMAL:
            continue
        to = tuple(compiled.canonical(t) for t in rule.to)
        for watch in compiled.watched(rule):
            if watch not in active and watch not in to:
                active[watch] = Active(
                    rule.key, watch, to, rule.percent, rule.probe.percent, state.phase, state.reason, rule.moves_named
                )
    return active


def reroute(
    compiled: CompiledPolicy,
    decision: Decision,
    active: Mapping[str, Active],
    held: Mapping[str, float],
    now: float,
    draw: float,
    pick: int,
) -> Decision:
    """Apply shifts and retry-after holds (target -> until) to a decision. `draw` in [0, 1) decides
    whether this request is in a shifted share, `pick` which target takes it. Held models are left
    out; shifted ones become the last resort of a chain."""
    model = decision.model
    if model is None:
        return decision

    def usable(m: str) -> bool:
        """Not held, and a model the request may use (a shift never sends it where it cannot be served)."""
        return held.get(compiled.spec(m).target, 0.0) <= now and compiled.allows(decision.eligible, m)

    def degraded(m: str) -> bool:
        return m in active and active[m].phase == SHIFTED

    chain = [model, *(m for m in map(compiled.model_serving, decision.fallbacks) if m)]
    fallbacks = [m for m in chain[1:] if usable(m) and not degraded(m)] + [
        m for m in chain[1:] if usable(m) and degraded(m)
    ]
    if not usable(model):
        wait = held[compiled.spec(model).target] - now
        if not fallbacks:
            raise RequestRejected(
                429,
                f"'{model}' is rate limited by its provider (held for {wait:.0f}s more) and "
                "the request has no other model",
                retry_after=wait,
            )
        move: tuple[str, str] | None = (
            fallbacks[0],
            f"'{model}' rate limited by its provider (retry-after, {wait:.0f}s left): using '{fallbacks[0]}'",
        )
    else:
        shift = active.get(model)
        if shift is not None and decision.route == EXPLICIT_ROUTE and not shift.moves_named:
            shift = None  # the client named this model and the rule leaves such requests where they are
        move = _shift_target(
            compiled,
            shift,
            active,
            lambda t: usable(t) and not degraded(t),
            decision.prompt_tokens + decision.max_output_tokens,
            draw,
            pick,
        )
    if move is None:
        if fallbacks == chain[1:]:
            return decision
        return dataclasses.replace(decision, fallbacks=tuple(compiled.spec(m).target for m in fallbacks))
    to, reason = move
    rest = [m for m in dict.fromkeys([*fallbacks, *((model,) if usable(model) else ())]) if m != to]
    return dataclasses.replace(
        decision,
        model=to,
        target=compiled.spec(to).target,
        fallbacks=tuple(compiled.spec(m).target for m in rest),
        reasons=decision.reasons + (reason,),
        shifted_from=decision.target,
    )


def _shift_target(
    compiled: CompiledPolicy,
    shift: Active | None,
    active: Mapping[str, Active],
    healthy: Callable[[str], bool],
    need_tokens: int,
    draw: float,
    pick: int,
) -> tuple[str, str] | None:
    """(model to use instead, why) when this request is in the shift's share and a target can take it.

    A target that is shifted away itself passes the request on to its own rule's targets: an open
    circuit must not send its traffic back to the failing model only because the model it names
    is slow at the moment."""
    if shift is None:
        return None
    share = shift.percent / 100 * (1 - shift.probe_percent / 100 if shift.phase == PROBING else 1)
    if draw >= share:
        return None
    seen, level, via = {shift.watch}, list(shift.to), list[str]()
    while level:
        targets = [t for t in level if healthy(t) and compiled.spec(t).context >= need_tokens]
        if targets:
            to = targets[pick % len(targets)]
            through = f" via {', '.join(repr(m) for m in via)}" if via else ""
            return to, f"shift '{shift.rule}' ({shift.phase}: {shift.reason}): '{shift.watch}' -> '{to}'{through}"
        seen.update(level)
        onward = [m for m in level if m in active and active[m].phase == SHIFTED]
        via += onward
        level = list(dict.fromkeys(t for m in onward for t in active[m].to if t not in seen))
    return None
