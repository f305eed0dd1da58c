"""`python -m router status`: each model's window figures and the active shifts and holds, read
from the policy's state store, so that it shows what a running cluster sees."""

from __future__ import annotations

import json
import time

from router.core.decide import CompiledPolicy
from router.core.shifts import NORMAL, ShiftState
from router.core.windows import Figures
from router.engine.health import Health, hold_key, region_subject, shift_key
from router.state import StateStore


def snapshot(store: StateStore, compiled: CompiledPolicy, window: float, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    health = Health(store, lambda: compiled, clock=lambda: now)
    subjects = health.load(now, window)
    rules = compiled.policy.shifts
    states = [ShiftState.loads(raw) for raw in store.get_many([shift_key(rule.key) for rule in rules])]
    targets = sorted({spec.target for spec in compiled.policy.models.values()})
    holds = {t: float(raw) - now for t, raw in zip(targets, store.get_many([hold_key(t) for t in targets])) if raw}
    regions: dict[str, list[str]] = {}  # region -> the subjects its figures are made of
    for spec in compiled.policy.models.values():
        for region in spec.region:
            # A group in several regions is counted by the region of each deployment that served.
            subject = spec.target if len(spec.region) == 1 else region_subject(spec.target, region)
            regions.setdefault(region, []).append(subject)
    return {
        "window_seconds": window,
        "models": {subject: _figures(health.mirror.figures(subject, now - window, now)) for subject in subjects},
        "regions": {
            region: _figures(health.mirror.figures(tuple(dict.fromkeys(groups)), now - window, now))
            for region, groups in sorted(regions.items())
        },
        "shifts": [
            {
                "rule": rule.key,
                "watch": rule.watched,
                "to": list(rule.to),
                "metric": rule.when.metric,
                "threshold": rule.when.threshold,
                "phase": state.phase,
                "since_seconds": round(now - state.since, 1) if state.since else None,
                "hold_left_seconds": round(state.until - now, 1) if state.until > now else None,
                "reason": state.reason,
                "times_shifted": state.count,
            }
            for rule, state in zip(rules, states)
        ],
        "holds": {target: round(left, 1) for target, left in holds.items() if left > 0},
    }


def _figures(figures: Figures) -> dict:
    return {
        "requests": figures.requests,
        "errors": figures.errors,
        "error_rate": figures.error_rate,
        "p50_latency": figures.p50_latency,
        "p95_latency": figures.p95_latency,
        "p99_latency": figures.p99_latency,
        "ttft_p95": figures.ttft_p95,
        "ttft_samples": figures.ttft_samples,
    }


def render(view: dict, as_json: bool = False) -> str:
    if as_json:
        return json.dumps(view, indent=2)
    lines = [
        f"models (last {view['window_seconds']:g}s)",
        f"  {'model group / deployment':<44} {'requests':>8} {'errors':>7} "
        f"{'p50':>7} {'p95':>7} {'p99':>7} {'ttft95':>7}",
    ]
    for subject, f in sorted(view["models"].items()):
        lines.append(_row(("    #" + subject.split("#", 1)[1]) if "#" in subject else subject, f))
    if not view["models"]:
        lines.append("  (no requests in the window)")
    lines += [_row(f"region {region}", f) for region, f in view.get("regions", {}).items()]
    lines.append("shifts")
    for shift in view["shifts"]:
        state = shift["phase"]
        if shift["phase"] != NORMAL:
            left = f", hold {shift['hold_left_seconds']:g}s left" if shift["hold_left_seconds"] else ""
            state = f"{state.upper()} for {shift['since_seconds']:g}s{left}: {shift['reason']}"
        lines.append(
            f"  {shift['rule']}: {shift['watch']} -> {', '.join(shift['to'])} when {shift['metric']} > "
            f"{shift['threshold']:g} | {state} | shifted {shift['times_shifted']}x"
        )
    if not view["shifts"]:
        lines.append("  (the policy has no shift rules)")
    lines.append("retry-after holds")
    lines += [f"  {target}: {left:g}s left" for target, left in sorted(view["holds"].items())] or ["  (none)"]
    return "\n".join(lines)


def _row(name: str, f: dict) -> str:
    rate = "-" if f["error_rate"] is None else f"{f['error_rate']:.0%}"
    return (
        f"  {name[:44]:<44} {f['requests']:>8} {rate:>7} {_s(f['p50_latency'])} {_s(f['p95_latency'])} "
        f"{_s(f['p99_latency'])} {_s(f['ttft_p95'])}"
    )


def _s(seconds: float | None) -> str:
    return f"{'-':>7}" if seconds is None else f"{seconds:>6.2f}s"
