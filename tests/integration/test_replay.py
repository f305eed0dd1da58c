"""Replays of recorded traffic (router.ops.replay) through small policies, and the `replay` and `diff`
commands: a changed keyword moves exactly the requests it names, a lowered budget is hit at the
request that crosses it, the cache serves in recorded time within its TTL, recorded latencies start
a shift, output is re-scaled where the model changes, and lines that are not requests are named
and skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from router.cache.embedders import EmbedderUnavailable
from router.ops import policy_diff, replay_report
from router.ops.recorded import read_traffic
from router.ops.replay import MIN_SAMPLES, Replay

T0 = 1_796_000_000.0  # 2026-11-30T00:53:20Z: a moment in the recorded past
POLICY = """
version: 1
models:
  small: {{target: g-small, context: 8k, price: {{input: 0, output: 1000}}}}
  big: {{target: g-big, context: 128k, price: {{input: 0, output: 4000}}}}
routes:
  - {{name: essay, when: {{any: [{keywords}]}}, use: big}}
  - {{name: default, use: small}}
cache:
  exact: {{ttl: 1h}}
  semantic: {{enabled: false}}
budgets:
  - {{name: all-daily, per: global, window: day, limit_usd: {limit}, on_exceed: reject}}
{extra}
"""


def policy(tmp_path: Path, name: str, keywords: str = "essay", limit: float = 100.0, extra: str = "") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(POLICY.format(keywords=keywords, limit=limit, extra=extra))
    return str(path)


def litellm_line(n: int, prompt: str, group: str = "g-small", latency: float = 0.5, **extra) -> dict:
    """A LiteLLM standard logging payload: one output token (0.001 USD on `small`, 0.004 on `big`)."""
    start = T0 + n
    return {
        "id": f"call-{n}",
        "call_type": "acompletion",
        "model": f"openai/{group}",
        "model_group": group,
        "messages": [{"role": "user", "content": prompt}],
        "model_parameters": {"max_tokens": 1, **extra},
        "prompt_tokens": 10,
        "completion_tokens": 1,
        "response_cost": 0.001,
        "startTime": start,
        "endTime": start + latency,
        "status": "success",
        "metadata": {"user_api_key_hash": "hash-a", "user_api_key_team_id": "team-a"},
        "request_tags": [],
    }


def write(tmp_path: Path, lines: list, name: str = "traffic.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def replayed(path: str, traffic: Path):
    return Replay(path).run(read_traffic([traffic], "auto"))


PROMPTS = [
    "write an essay on rivers",
    "tell me a story about a fox",
    "hello there",
    "please draft a story for kids",
    "what time zone is Lisbon in",
    "an essay and a story, both",
]


def test_a_new_keyword_moves_exactly_the_requests_that_contain_it(tmp_path):
    traffic = write(tmp_path, [litellm_line(n, p) for n, p in enumerate(PROMPTS * 5)])
    old = replayed(policy(tmp_path, "old"), traffic)
    new = replayed(policy(tmp_path, "new", keywords="essay, story"), traffic)
    moved = [
        a.item.body["messages"][0]["content"] for a, b in zip(old, new) if (a.route, a.target) != (b.route, b.target)
    ]
    assert moved == [p for p in PROMPTS * 5 if "story" in p and "essay" not in p]
    assert all(b.route == "essay" and b.target == "g-big" for a, b in zip(old, new) if a.route != b.route)


def test_the_diff_command_gates_on_what_moved_and_what_it_costs(tmp_path):
    traffic = write(tmp_path, [litellm_line(n, p) for n, p in enumerate(PROMPTS * 5)])
    old, new = policy(tmp_path, "old"), policy(tmp_path, "new", keywords="essay, story")

    def diff(*conditions: str) -> subprocess.CompletedProcess:
        gates = [arg for c in conditions for arg in ("--fail-if", c)]
        command = [sys.executable, "-m", "router", "diff", old, new, str(traffic), "--json", *gates]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    failing = diff("moved > 10%", "cost > +5%")
    figures = json.loads(failing.stdout)
    assert failing.returncode == 1, failing.stderr
    assert figures["moved"]["count"] == 10 and figures["routes"]["essay"] == {"old": 10, "new": 20}
    # 10 requests from `small` (0.001 USD) to `big` (0.004): +0.03 USD on 0.06
    assert figures["cost_usd"]["delta"] == pytest.approx(0.03) and figures["cost_usd"]["percent"] == pytest.approx(50)
    assert [f.split(":")[0] for f in figures["failed"]] == ["moved > 10%", "cost > +5%"]
    assert {e["prompt"] for e in figures["moved_sample"]} == {
        "tell me a story about a fox",
        "please draft a story for kids",
    }
    assert {(e["from"], e["to"]) for e in figures["moved_sample"]} == {("default/g-small", "essay/g-big")}
    assert figures["model_cost_usd"]["g-big"] == {"old": pytest.approx(0.04), "new": pytest.approx(0.08)}
    passing = diff("moved > 50%", "cost > +60%", "budgets > 0")
    assert passing.returncode == 0 and json.loads(passing.stdout)["failed"] == []
    assert diff("spend > 5%").returncode == 2


def test_the_sample_of_moves_shows_route_changes_before_model_changes(tmp_path):
    traffic = read_traffic([write(tmp_path, [litellm_line(n, p) for n, p in enumerate(PROMPTS * 5)])], "auto")
    old_path, new_path = policy(tmp_path, "old"), policy(tmp_path, "new", keywords="essay, story")
    Path(new_path).write_text(
        Path(new_path).read_text().replace("{name: default, use: small}", "{name: default, use: big}")
    )
    old, new = Replay(old_path), Replay(new_path)
    before, after = old.run(traffic), new.run(traffic)
    figures = [replay_report.summary(p, traffic, o, []) for p, o in ((old_path, before), (new_path, after))]
    moved = policy_diff.diff(*figures, before, after, sample=3)
    assert moved["moved"]["count"] == 20  # 10 to the essay route, 10 more on default's new model
    assert [(e["from"], e["to"]) for e in moved["moved_sample"]] == [("default/g-small", "essay/g-big")] * 3


def test_a_lowered_budget_is_hit_at_the_request_that_crosses_it(tmp_path):
    # Each request reserves its one output token (max_tokens 1: 0.001 USD) and spends it; the
    # eleventh would bring the day's 0.010 to 0.011, over 0.0105.
    traffic = write(tmp_path, [litellm_line(n, "hello there") for n in range(20)])
    path = policy(tmp_path, "tight", limit=0.0105)
    outcomes = replayed(path, traffic)
    assert [o.outcome for o in outcomes] == ["ok"] * 10 + ["budget_rejected"] * 10
    assert outcomes[10].rejected_by == "all-daily" and outcomes[10].item.where == f"{traffic}:11"
    done = subprocess.run(
        [sys.executable, "-m", "router", "diff", policy(tmp_path, "loose"), path, str(traffic), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    hit = json.loads(done.stdout)["budgets_newly_hit"]
    assert [(h["budget"], h["first"]["at"], h["first"]["as"], h["rejected"]) for h in hit] == [
        ("all-daily", f"{traffic}:11", "rejected", 10)
    ]
    assert hit[0]["first"]["t"] == "2026-11-30T00:53:30+00:00"  # T0 + 10 s: the eleventh request's time


def test_the_cache_serves_in_recorded_time_within_its_ttl(tmp_path):
    times = [0, 1800, 3000, 3 * 3600]  # a miss, two hits within the hour, a miss after it
    lines = [
        litellm_line(0, "hello there", temperature=0) | {"startTime": T0 + t, "endTime": T0 + t + 1} for t in times
    ]
    outcomes = replayed(policy(tmp_path, "p"), write(tmp_path, lines))
    assert [o.cache for o in outcomes] == ["miss", "exact", "exact", "miss"]
    assert [o.cost_usd for o in outcomes] == [0.001, 0.0, 0.0, 0.001]
    assert outcomes[1].saved_usd == pytest.approx(0.001)


SHIFT = """
shifts:
  - {name: small-slow, watch: small, when: {p95_latency: 3s, window: 5m, min_samples: 20}, to: big, hold: 5m}
"""


def test_recorded_latencies_start_a_shift_and_later_requests_follow_it(tmp_path):
    slow = [litellm_line(n, "hello there", latency=5.0) for n in range(60)]
    outcomes = replayed(policy(tmp_path, "shifty", extra=SHIFT), write(tmp_path, slow))
    assert outcomes[0].target == "g-small" and outcomes[-1].target == "g-big"
    first_shifted = next(n for n, o in enumerate(outcomes) if o.target == "g-big")
    assert 20 <= first_shifted <= 23  # twenty samples, then the next evaluation (each recorded second)
    replay = Replay(policy(tmp_path, "shifty", extra=SHIFT))
    traffic = read_traffic([write(tmp_path, slow)], "auto")
    outcomes = replay.run(traffic)
    assert [(s["rule"], s["from"], s["to"]) for s in replay.shifts()] == [("small-slow", "normal", "shifted")]
    shown = replay_report.render(replay_report.summary("p", traffic, outcomes, replay.shifts()))
    assert "shift 'small-slow' (small): moved traffic 1 times\n  normal -> shifted at 2026-11-30T00:53:" in shown


def test_output_is_rescaled_by_the_models_recorded_means_where_the_model_changes(tmp_path):
    # `small` answered 20 times with 100 tokens and once with 50 (the request that moves), `big` 20
    # times with 300: the moved request is replayed with 50 * 300 / (2050 / 21) = 153.7 tokens.
    lines = [litellm_line(n, "hello there") | {"completion_tokens": 100} for n in range(MIN_SAMPLES)]
    lines += [
        litellm_line(100 + n, "write an essay", group="g-big") | {"completion_tokens": 300} for n in range(MIN_SAMPLES)
    ]
    lines.append(litellm_line(200, "tell me a story") | {"completion_tokens": 50})
    outcomes = replayed(policy(tmp_path, "new", keywords="essay, story"), write(tmp_path, lines))
    assert outcomes[-1].target == "g-big" and outcomes[-1].output_tokens == 154
    assert outcomes[-1].cost_usd == pytest.approx(154 * 4000 / 1e6)
    assert outcomes[0].output_tokens == 100  # unmoved: as recorded


def test_a_fallback_that_answered_then_answers_again_while_the_same_group_is_chosen(tmp_path):
    def record(n: int, prompt: str) -> dict:
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
        return {
            "t": T0 + n,
            "outcome": "ok",
            "route": "default",
            "target": "g-small",
            "served": "g-big",  # g-small failed; its fallback answered
            "tokens": {"prompt": 10, "completion": 1},
            "request": {"body": body, "identity": {"key_hash": "k"}},
        }

    traffic = write(tmp_path, [record(0, "hello there"), record(1, "write an essay")])
    same, moved = replayed(policy(tmp_path, "p"), traffic)
    assert (same.target, same.cost_usd) == ("g-big", 0.004)  # big's price for its one token
    assert (moved.route, moved.target, moved.cost_usd) == ("essay", "g-big", 0.004)


def test_lines_that_are_not_requests_are_named_by_line_and_skipped(tmp_path):
    router_record = {"t": T0, "outcome": "ok", "route": "default", "model": "small", "cost_usd": 0.1}
    lines = [
        litellm_line(0, "hello there"),
        "{not json",
        json.dumps([1, 2]),
        router_record,  # no captured request: counted apart
        litellm_line(1, "hello there") | {"call_type": "aembedding"},
        {"model": "auto", "messages": "hello"},
        {
            "custom_id": "b-1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"messages": [{"role": "user", "content": "hi"}]},
        },
        {"prompt": "hi"},
        litellm_line(2, "write an essay"),
    ]
    traffic = write(tmp_path, lines)
    done = subprocess.run(
        [sys.executable, "-m", "router", "replay", policy(tmp_path, "p"), str(traffic), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["requests"] == 3 and figures["skipped"]["uncaptured"] == 1
    assert [line.split(": ")[0].rsplit(":", 1)[1] for line in figures["skipped"]["lines"]] == ["2", "3", "5", "6", "8"]
    assert "a LiteLLM 'aembedding' call" in done.stderr and f"{traffic}:6: `messages` is not a list" in done.stderr
    assert figures["sources"] == {"litellm": 2, "openai": 1}


def test_a_policy_whose_embedder_only_the_proxy_can_call_is_refused(tmp_path):
    extra = "  semantic: {embedder: text-embedding-3-small}"
    path = policy(tmp_path, "remote")
    text = Path(path).read_text().replace("  semantic: {enabled: false}", extra)
    Path(path).write_text(text)
    with pytest.raises(EmbedderUnavailable, match="'text-embedding-3-small' is a model group of the proxy"):
        Replay(path)


def test_the_progress_bar_counts_the_requests(tmp_path):
    traffic = write(tmp_path, [litellm_line(n, "hello there") for n in range(2500)])
    done = subprocess.run(
        [sys.executable, "-m", "router", "replay", policy(tmp_path, "p"), str(traffic), "--progress"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0
    assert all(f"{n}/2,500" in done.stderr for n in ("1,000", "2,000", "2,500")) and "req/s" in done.stderr


def test_a_paraphrase_of_an_answered_question_is_a_semantic_hit_in_the_replay(tmp_path):
    """A replay has no writer thread: its cache writes each answer at once (the runtime's writes
    behind), or the second question would find nothing in the vector index."""
    path = tmp_path / "semantic.yaml"
    path.write_text(POLICY.format(keywords="essay", limit=100.0, extra="").replace("{enabled: false}", "{}"))
    asked = ["What is the capital city of France?", "Which city is the capital of France?"]
    lines = [litellm_line(n, prompt, temperature=0) for n, prompt in enumerate(asked)]
    outcomes = replayed(str(path), write(tmp_path, lines))
    assert outcomes[0].cache == "miss" and outcomes[1].cache.startswith("semantic")
