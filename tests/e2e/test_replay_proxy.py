"""Traffic recorded by a real proxy with the policy's `capture` on, replayed offline through the same
policy: every request gets the route, model group, cache answer and cost it got then; the store's
log holds no prompt; a redacted number never reaches the disk."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from openai import OpenAI

from router.engine.sink import read_records
from router.ops.recorded import read_traffic
from router.ops.replay import Replay
from router.ops.replay_report import prompt_of
from tests.helpers import DEFAULT, auth_config, ledger, poll_until, start_proxy, write_policy

pytestmark = pytest.mark.e2e
CARD = "4111-1111-1111-1111"
# (key, prompt, temperature or None): routes by meaning and by keyword, exact hits, a second tenant
# asking what the first did (its own cache), and a refund question with a card number to redact.
TURNS = [
    ("sk-tenant-a", "Show that the square root of 2 is irrational", None),
    ("sk-tenant-a", "Fix this Python function, it returns the wrong sum: def add(a, b): return a - b", 0),
    ("sk-tenant-a", "Write a short poem about the sea at night", None),
    ("sk-tenant-b", "Extract every person's name from: Alice met Bob and Carol in Paris.", 0),
    ("sk-tenant-a", "What is the capital of France?", 0),
    ("sk-tenant-a", "What is the capital of France?", 0),
    ("sk-tenant-b", "What is the capital of France?", 0),
    ("sk-tenant-a", "Fix this Python function, it returns the wrong sum: def add(a, b): return a - b", 0),
    ("sk-tenant-b", f"My card {CARD} was charged twice, how do I get a refund?", None),
    ("sk-tenant-a", "Translate 'good morning' into Japanese", 0),
]


@pytest.fixture(scope="module")
def recorded(simulator, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("replay-proxy")
    policy = write_policy(workdir, source=DEFAULT)
    policy.write_text(
        policy.read_text() + "\ncapture: {prompts: true, redact: ['\\b\\d{4}-\\d{4}-\\d{4}-\\d{4}\\b']}\n"
    )
    proxy = start_proxy(simulator, policy, workdir, config=auth_config(workdir))
    try:
        for key, prompt, temperature in TURNS:
            client = OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0)
            extra = {} if temperature is None else {"temperature": temperature}
            client.chat.completions.create(model="auto", messages=[{"role": "user", "content": prompt}], **extra)
        # A three-turn conversation: its later turns stay on the first turn's route and model.
        client = OpenAI(base_url=f"{proxy.url}/v1", api_key="sk-tenant-a", max_retries=0)
        messages = [{"role": "user", "content": "Why does my recursive fibonacci function hit the recursion limit?"}]
        for follow_up in ("ok now fix it", "thanks, and make it iterative"):
            answer = client.chat.completions.create(model="auto", messages=messages)
            messages += [{"role": "assistant", "content": answer.choices[0].message.content}]
            messages += [{"role": "user", "content": follow_up}]
        client.chat.completions.create(model="auto", messages=messages)
        records = poll_until(
            lambda: found if len(found := list(read_records(workdir / "ledger"))) >= len(TURNS) + 3 else None,
            20,
            "every request's record on disk",
        )
    finally:
        proxy.stop()
    return policy, workdir / "ledger", records


def test_the_records_hold_the_request_and_the_store_does_not(recorded):
    policy, _, records = recorded
    assert all(r["request"]["body"]["messages"] for r in records)
    refund = next(r for r in records if "refund" in r["request"]["body"]["messages"][-1]["content"])
    assert CARD not in json.dumps(refund) and "[redacted]" in refund["request"]["body"]["messages"][-1]["content"]
    assert refund["request"]["identity"]["team"] == "team-b"
    assert [r for r in ledger(policy) if "request" in r] == []  # prompts stay out of the state store
    assert {r["cache"] for r in records} >= {"exact", "miss", "off"}
    assert any(r["decided_by"] == "affinity" for r in records)


def test_a_replay_under_the_same_policy_reproduces_every_decision_and_cost(recorded):
    policy, directory, records = recorded
    traffic = read_traffic([directory], "auto")
    assert traffic.problems == [] and len(traffic.items) == len(records)
    outcomes = Replay(str(policy)).run(traffic)
    redacted = [o for o in outcomes if o.item.redacted]
    assert [prompt_of(o) for o in redacted] == ["My card [redacted] was charged twice, how do I get a refund?"]
    for outcome in outcomes:
        item = outcome.item
        if item.redacted:
            continue  # decided on the redacted text, which may read otherwise (the summary says how many)
        assert (outcome.route, outcome.target, outcome.cache) == (item.route, item.target, item.cache), item.where
        assert outcome.cost_usd == item.cost_usd, item.where


def test_the_replay_command_prints_the_routes_models_and_costs_recorded(recorded, tmp_path):
    policy, _, records = recorded
    kept = [r for r in records if "redacted" not in r["request"]]  # the rest were decided on their full text
    traffic = tmp_path / "traffic.jsonl"
    traffic.write_text("".join(json.dumps(r) + "\n" for r in kept))
    done = subprocess.run(
        [sys.executable, "-m", "router", "replay", str(policy), str(traffic), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(done.stdout)
    assert figures["routes"] == dict(Counter(r["route"] for r in kept).most_common())
    assert figures["models"] == dict(Counter(r["served"] for r in kept).most_common())
    recorded_cost = round(sum(r["cost_usd"] for r in kept), 9)
    assert figures["cost_usd"]["total"] == figures["recorded"]["cost_usd"] == recorded_cost > 0
    for route in figures["routes"]:
        assert figures["cost_usd"]["routes"][route] == round(sum(r["cost_usd"] for r in kept if r["route"] == route), 9)
    assert figures["cache"]["exact"] == sum(r["cache"] == "exact" for r in kept) >= 2
