"""The router's Prometheus metrics as a real Prometheus server (Debian's package) scrapes them from a
real proxy with two workers (PROMETHEUS_MULTIPROC_DIR: the endpoint adds up both), queried through
Prometheus's HTTP API: request counts by route agree with the ledger, budget headroom falls as
requests are served, a shift shows as a state change. And the webhook alerts of that proxy, as a
receiver here gets them: one budget-80 % alert and one shift-start alert, from two workers."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlparse

import httpx
import pytest

from router import load_policy
from router.ops.observability import alert_rules, dashboard
from tests.helpers import MASTER_KEY, ledger, ledger_records, poll_until, procs, start_proxy

pytestmark = pytest.mark.e2e
FLASH = "deepseek-v4-flash"
LIMIT = 0.002  # USD a day: flash answers here cost ~0.00003 USD each
POLICY = """
version: 1
settings: {timeout: 10s, retries: 0, default_output_tokens: 64}
models:
  flash: {target: deepseek-v4-flash, price: {input: 0.27, output: 1.10}, context: 128k}
  pro: {target: deepseek-v4-pro, price: {input: 0.55, output: 2.20}, context: 200k}
  qwen: {target: qwen3-32b, price: {input: 0.30, output: 1.20}, context: 32k}
routes:
  - {name: code, when: {any: [python]}, use: qwen}
  - {name: default, use: flash, fallbacks: [pro]}
budgets:
  - {name: global-daily, per: global, window: day, limit_usd: LIMIT, on_exceed: warn}
shifts:
  - {name: flash-slow, watch: flash, when: {p95_latency: 0.4s, window: 4s, min_samples: 8}, to: pro, hold: 60s}
state: {backend: sqlite, path: STATE}
webhook: {url: "HOOK", retries: 3}
"""


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: keeps every JSON body; its very first answer is a 500 (to be retried)."""

    got: ClassVar[list[dict]] = []
    posts = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Receiver.posts += 1
        if Receiver.posts > 1:
            Receiver.got.append(body)
        self.send_response(500 if Receiver.posts == 1 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


@pytest.fixture(scope="module")
def stack(simulator, hook, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metrics")
    policy = workdir / "policy.yaml"
    text = POLICY.replace("STATE", str(workdir / "state.db")).replace("HOOK", hook).replace("LIMIT", str(LIMIT))
    policy.write_text(text)
    samples = workdir / "prometheus-multiproc"
    samples.mkdir()
    proxy = start_proxy(simulator, policy, workdir, workers=2, PROMETHEUS_MULTIPROC_DIR=str(samples))
    prometheus = procs.PrometheusServer(workdir, [urlparse(proxy.url).netloc], "/router/metrics", interval="1s")
    try:
        prometheus.start()
        yield proxy, prometheus, policy
    finally:
        prometheus.stop()
        proxy.stop()


def ask(proxy, content: str) -> httpx.Response:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}]}
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    return httpx.post(f"{proxy.url}/v1/chat/completions", json=body, headers=headers, timeout=60)


def scraped(prometheus, expression: str, want, timeout: float = 20.0):
    """The expression's result, once `want(result)` holds (scrapes come every second)."""

    def check():
        result = prometheus.query(expression)
        return result if want(result) else None

    return poll_until(check, timeout, expression, every=0.5)


def by_route(result: list[dict]) -> dict[str, int]:
    return {row["metric"]["route"]: int(float(row["value"][1])) for row in result}


def headroom(prometheus) -> float:
    rows = prometheus.query('router_budget_headroom_ratio{budget="global-daily",unit="usd"}')
    return min(float(row["value"][1]) for row in rows)


def test_request_counts_by_route_agree_with_the_ledger_and_headroom_falls(stack, sim):
    proxy, prometheus, policy = stack
    for n in range(16):
        assert ask(proxy, "write python to sort a list" if n % 3 == 0 else f"hello number {n}").status_code == 200
    records = ledger_records(policy, 16)
    in_ledger = Counter(r["route"] for r in records)
    assert in_ledger == {"code": 6, "default": 10}
    expression = "sum by (route) (router_requests_total)"
    assert by_route(scraped(prometheus, expression, lambda r: by_route(r) == dict(in_ledger))) == dict(in_ledger)
    # After the last admission: what the earlier requests spent, less the worst case (64 output
    # tokens at flash's price) of each request not yet settled, its own among them.
    earlier = sum(r["cost_usd"] for r in sorted(records, key=lambda r: r["t"])[:-1])
    before = headroom(prometheus)
    assert 0 < before < 1 - earlier / LIMIT

    for n in range(10):
        assert ask(proxy, f"and another one {n}").status_code == 200
    ledger_records(policy, 26)
    scraped(prometheus, "sum(router_requests_total)", lambda r: r and float(r[0]["value"][1]) == 26)
    after = poll_until(lambda: h if (h := headroom(prometheus)) < before else None, 15, "headroom to fall")
    assert after < before
    tokens = scraped(prometheus, 'sum(router_tokens_total{kind="output"})', lambda r: bool(r))
    assert int(float(tokens[0]["value"][1])) == sum(r["tokens"]["completion"] for r in ledger(policy))


def test_a_shift_shows_as_a_state_change(stack, sim):
    proxy, prometheus, _ = stack
    rule = 'max(router_shift_state{rule="flash-slow",watch="flash"})'
    assert float(scraped(prometheus, rule, bool)[0]["value"][1]) == 0  # normal
    began = time.time()
    sim.set_profile(FLASH, latency_ms=900)

    def shifted():
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: ask(proxy, f"slow one {n}"), range(8)))
        found = prometheus.query(rule)
        return found if found and float(found[0]["value"][1]) == 1 else None

    poll_until(shifted, 60, "the shift to show in Prometheus")
    time.sleep(1.5)  # a step of the range past the scrape that saw it
    history = prometheus.query_range(rule, began - 5, time.time())
    phases = [float(value) for _, value in history[0]["values"]]
    assert phases[0] == 0 and phases[-1] == 1, history  # normal, then shifted
    served = prometheus.query('sum by (model_group) (router_attempts_total{model_group="deepseek-v4-pro"})')
    assert served, "shifted traffic reaches pro"


def test_every_dashboard_and_alert_expression_runs_on_the_scraped_metrics(stack):
    _, prometheus, policy = stack
    spec = load_policy(policy)
    panels = [p for p in dashboard(spec)["panels"] if p["type"] != "row"]
    empty = []
    for panel in panels:
        for target in panel["targets"]:
            if not prometheus.query(target["expr"]):  # a bad expression fails the query itself
                empty.append(panel["title"])
    # What needs more than this test's traffic: a fallback, cache hits, an error.
    assert set(empty) <= {"Cache hit ratio and savings", "Fallback and error rate"}, empty
    for group in alert_rules(spec)["groups"]:
        for rule in group["rules"]:
            prometheus.query(rule["expr"])


def test_one_budget_80_percent_alert_and_one_shift_start_alert_reach_the_webhook(stack, sim):
    """After the tests above (a shift started; a fifth of the budget spent), spend on until the
    80 % alert arrives: each event comes once, though both workers saw it."""
    proxy = stack[0]

    def kinds(kind: str, **fields) -> list[dict]:
        return [m for m in Receiver.got if m["router"]["kind"] == kind and fields.items() <= m["router"].items()]

    sim.set_profile(FLASH, latency_ms=0)
    for n in range(200):
        if kinds("budget", threshold=0.8):
            break
        assert ask(proxy, f"spend a little {n}").status_code == 200
    poll_until(lambda: kinds("budget", threshold=0.8), 10, "the 80 % alert")
    time.sleep(2.5)  # time for a duplicate from the other worker to arrive, were there one
    assert len(kinds("budget", threshold=0.8)) == 1 and len(kinds("budget", threshold=0.5)) == 1
    eighty = kinds("budget", threshold=0.8)[0]
    assert eighty["router"]["budget"] == "global-daily" and eighty["router"]["scope"] == "all"
    assert eighty["text"].startswith("Budget 'global-daily' at 80% for all:")
    started = kinds("shift_start", rule="flash-slow")
    assert len(started) == 1 and started[0]["text"].startswith("Shift 'flash-slow' started: traffic moved off flash")
    assert Receiver.posts == len(Receiver.got) + 1  # the first post was answered 500 and sent again
