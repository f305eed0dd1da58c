"""Shift rules as a state machine, and how active shifts and retry-after holds move a decision."""

from __future__ import annotations

import pytest

from router import CompiledPolicy, RequestRejected, parse_policy, route_body
from router.core.shifts import NORMAL, PROBING, SHIFTED, ShiftState, active_shifts, reroute, step
from router.core.windows import Figures

POLICY_TEXT = """
version: 1
models:
  flash: {target: g-flash, context: 128k}
  pro: {target: g-pro, context: 200k}
  qwen: {target: g-qwen, context: 32k}
  mini: {target: g-mini, context: 4k}
routes:
  - {name: default, use: flash, fallbacks: [pro, qwen]}
shifts:
  - name: slow
    watch: flash
    when: {p95_latency: 3s, window: 5m, min_samples: 20}
    to: [mini, pro]
    hold: 5m
    probe: {percent: 10, min_samples: 5, recover_below: 0.8}
  - {watch: qwen, when: {error_rate: 0.5, window: 1m, min_samples: 10}, to: pro, percent: 50, hold: 30s}
"""
POLICY = CompiledPolicy(parse_policy(POLICY_TEXT))
SLOW, ERRORS = POLICY.policy.shifts


def figures(p95=None, n=0, errors=0):
    return Figures(requests=n, errors=errors, latency_samples=n, p95_latency=p95)


def test_breach_hold_probe_and_recovery():
    seen = []

    def since(t, result):
        seen.append(t)
        return result

    state = step(SLOW, ShiftState(), lambda t: since(t, figures(p95=2.9, n=50)), now=1000)
    assert state.phase == NORMAL and seen[-1] == 700  # the 5-minute window
    state = step(SLOW, state, lambda t: figures(p95=3.5, n=19), now=1001)
    assert state.phase == NORMAL  # too few samples
    state = step(SLOW, state, lambda t: figures(p95=3.5, n=20), now=1002)
    assert (state.phase, state.until, state.count) == (SHIFTED, 1302, 1) and "p95_latency 3.50s > 3.00s" in state.reason
    assert step(SLOW, state, lambda t: figures(p95=0.1, n=99), now=1301) == state  # held whatever the figures
    state = step(SLOW, state, lambda t: figures(), now=1302)
    assert (state.phase, state.since) == (PROBING, 1302)
    state = step(SLOW, state, lambda t: since(t, figures(p95=2.5, n=10)), now=1310)
    assert seen[-1] == 1302  # only the probe's own samples count
    assert (state.phase, state.count) == (SHIFTED, 2)  # 2.5 s is under the threshold, not under 80 % of it
    state = step(SLOW, step(SLOW, state, lambda t: figures(), now=1610), lambda t: figures(p95=2.0, n=5), now=1620)
    assert (state.phase, state.since) == (NORMAL, 1620) and "recovered" in state.reason
    state = step(SLOW, state, lambda t: since(t, figures(p95=9.0, n=1)), now=1630)
    assert seen[-1] == 1620 and state.phase == NORMAL  # figures from before the return do not count


def test_a_probe_ends_in_bounded_time_at_any_traffic():
    """At low traffic a probe share may never gather its samples: the phase still ends by
    `probe.max_duration` (default: the trigger's window), on whatever probes there were."""
    probing = ShiftState(PROBING, 1000.0, 0.0, 0.6, "hold ended", 1)
    window = ERRORS.when.window  # 60 s; the rule sets no max_duration
    assert step(ERRORS, probing, lambda t: figures(n=1, errors=0), now=1000 + window - 1) == probing  # still probing
    closed = step(ERRORS, probing, lambda t: figures(n=1, errors=0), now=1000 + window)
    assert closed.phase == NORMAL and "1 samples" in closed.reason
    reopened = step(ERRORS, probing, lambda t: figures(n=2, errors=2), now=1000 + window)
    assert (reopened.phase, reopened.until, reopened.count) == (SHIFTED, 1000 + window + 30, 2)
    quiet = step(ERRORS, probing, lambda t: figures(), now=1000 + window)
    assert quiet.phase == NORMAL and "no probe" in quiet.reason
    # A rule's own bound wins over the default.
    bounded = CompiledPolicy(
        parse_policy(
            POLICY_TEXT.replace("min_samples: 5, recover_below", "min_samples: 5, max_duration: 10s, recover_below")
        )
    )
    slow = bounded.policy.shifts[0]
    assert step(slow, probing, lambda t: figures(p95=1.0, n=1), now=1009).phase == PROBING
    assert step(slow, probing, lambda t: figures(p95=1.0, n=1), now=1010).phase == NORMAL


def test_state_round_trips_through_the_store_format():
    state = ShiftState(SHIFTED, 1.5, 300.0, 3.2, "why", 4)
    assert ShiftState.loads(state.dumps()) == state and ShiftState.loads(None) == ShiftState()


def ask(content="hello", **extra):
    return route_body(POLICY, {"model": "auto", "messages": [{"role": "user", "content": content}], **extra})


def active(*phases):
    states = {rule.key: ShiftState(phase, 0, 0, None, "because") for rule, phase in zip(POLICY.policy.shifts, phases)}
    return active_shifts(POLICY, states)


def test_a_shift_moves_the_request_to_a_target_that_fits():
    shifts = active(SHIFTED, NORMAL)
    moved = reroute(POLICY, ask(), shifts, {}, now=0, draw=0.5, pick=0)
    assert (moved.target, moved.shifted_from) == ("g-mini", "g-flash")
    assert moved.fallbacks == ("g-pro", "g-qwen", "g-flash")  # the watched model is the last resort
    assert "shift 'slow'" in moved.reason
    big = reroute(POLICY, ask("word " * 4000), shifts, {}, now=0, draw=0.5, pick=0)
    assert big.target == "g-pro"  # mini's 4k window cannot hold the prompt


def test_probing_sends_the_probe_share_back_and_percent_splits_traffic():
    probing = active(PROBING, NORMAL)
    assert reroute(POLICY, ask(), probing, {}, 0, draw=0.95, pick=1).target == "g-flash"  # in the 10 % probe
    assert reroute(POLICY, ask(), probing, {}, 0, draw=0.5, pick=1).target == "g-pro"
    half = active(NORMAL, SHIFTED)
    named = ask(model="qwen")
    assert reroute(POLICY, named, half, {}, 0, draw=0.3, pick=0).target == "g-pro"
    assert reroute(POLICY, named, half, {}, 0, draw=0.7, pick=0).target == "g-qwen"


def test_a_named_model_stays_under_a_latency_shift_and_moves_when_its_circuit_opens():
    slow_flash = active(SHIFTED, NORMAL)
    named = ask(model="flash")
    assert reroute(POLICY, named, slow_flash, {}, 0, draw=0.0, pick=0) is named  # slow is still the answer asked for
    open_qwen = active(NORMAL, SHIFTED)
    moved = reroute(POLICY, ask(model="qwen"), open_qwen, {}, 0, draw=0.0, pick=0)
    assert (moved.route, moved.target, moved.shifted_from, moved.fallbacks) == (
        "explicit",
        "g-pro",
        "g-qwen",
        ("g-qwen",),
    )
    # Either default can be turned around per rule.
    flipped = CompiledPolicy(
        parse_policy(
            POLICY_TEXT.replace("    hold: 5m\n", "    hold: 5m\n    move_named: true\n").replace(
                "hold: 30s}", "hold: 30s, move_named: false}"
            )
        )
    )
    states = {rule.key: ShiftState(SHIFTED, 0, 0, None, "because") for rule in flipped.policy.shifts}
    both = active_shifts(flipped, states)
    flash = route_body(flipped, {"model": "flash", "messages": [{"role": "user", "content": "x"}]})
    qwen = route_body(flipped, {"model": "qwen", "messages": [{"role": "user", "content": "x"}]})
    assert reroute(flipped, flash, both, {}, 0, draw=0.0, pick=1).target == "g-pro"
    assert reroute(flipped, qwen, both, {}, 0, draw=0.0, pick=0) is qwen


def test_unaffected_requests_keep_their_decision_but_avoid_degraded_fallbacks():
    decision = ask()
    assert reroute(POLICY, decision, {}, {}, 0, 0.0, 0) is decision
    degraded = reroute(POLICY, decision, active(NORMAL, SHIFTED), {}, 0, 0.0, 0)
    assert degraded.target == "g-flash" and degraded.fallbacks == ("g-pro", "g-qwen")
    shifted_qwen = active(NORMAL, SHIFTED)
    reordered = reroute(
        POLICY,
        route_body(POLICY, {"model": "auto", "messages": [{"role": "user", "content": "x"}]}),
        shifted_qwen,
        {"g-pro": 50.0},
        now=10,
        draw=0.9,
        pick=0,
    )
    assert reordered.fallbacks == ("g-qwen",)  # pro is held, qwen degraded but still a last resort


def test_a_held_model_is_skipped_until_its_retry_after_and_refused_without_alternatives():
    held = {"g-flash": 12.0}
    moved = reroute(POLICY, ask(), {}, held, now=10, draw=0.9, pick=0)
    assert (moved.target, moved.shifted_from) == ("g-pro", "g-flash") and "rate limited" in moved.reason
    assert "g-flash" not in moved.fallbacks
    assert reroute(POLICY, ask(), {}, held, now=12.5, draw=0.9, pick=0).target == "g-flash"
    with pytest.raises(RequestRejected) as refused:
        reroute(POLICY, ask(model="flash"), {}, held, now=10, draw=0.9, pick=0)
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "2"}


def test_a_shift_whose_targets_are_shifted_too_follows_their_shifts():
    """An open circuit on glm moves its traffic to flash; while flash's own latency rule moves flash's
    traffic to pro, glm's requests go on to pro, never back to the failing glm."""
    chained = CompiledPolicy(
        parse_policy(
            """
version: 1
models:
  glm: {target: g-glm, context: 128k}
  flash: {target: g-flash, context: 128k}
  pro: {target: g-pro, context: 200k}
routes:
  - {name: default, use: glm, fallbacks: [flash]}
shifts:
  - {name: glm-errors, watch: glm, when: {error_rate: 0.3, window: 10s, min_samples: 10}, to: flash, hold: 60s}
  - {name: flash-slow, watch: flash, when: {p95_latency: 1s, window: 10s, min_samples: 10}, to: pro, hold: 5s}
  - {name: pro-slow, watch: pro, when: {p95_latency: 1s, window: 10s, min_samples: 10}, to: glm, hold: 5s}
"""
        )
    )

    def shifted(*rules):
        states = {rule: ShiftState(SHIFTED, 0, 0, None, "because") for rule in rules}
        return active_shifts(chained, states)

    body = {"model": "auto", "messages": [{"role": "user", "content": "storm"}]}
    decision = route_body(chained, body)
    assert reroute(chained, decision, shifted("glm-errors"), {}, 0, 0.0, 0).target == "g-flash"
    moved = reroute(chained, decision, shifted("glm-errors", "flash-slow"), {}, 0, 0.0, 0)
    assert (moved.target, moved.shifted_from) == ("g-pro", "g-glm")
    assert "via 'flash'" in moved.reason
    # A cycle back to the watched model ends the walk with no healthy target: the request stays.
    stuck = reroute(chained, decision, shifted("glm-errors", "flash-slow", "pro-slow"), {}, 0, 0.0, 0)
    assert stuck.target == "g-glm" and stuck.shifted_from is None
