"""The alert rules and the dashboard generated from a policy, checked by the tools that read them:
`promtool check rules`, `promtool test rules` (the alerts fire on the series that should fire them,
and only those), and a JSON schema of the Grafana dashboard fields Grafana needs."""

from __future__ import annotations

import json
import subprocess

import jsonschema
import yaml

from router import load_policy
from router.ops.observability import alert_rules, dashboard
from tests.helpers import DEFAULT, ROOT

CAPABILITIES = ROOT / "policies" / "examples" / "capabilities.yaml"


def write_rules(tmp_path, policy=DEFAULT):
    rules = alert_rules(load_policy(policy))
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return rules, path


def test_promtool_accepts_the_generated_rules(tmp_path):
    for policy in (DEFAULT, CAPABILITIES):
        _, path = write_rules(tmp_path, policy)
        checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "SUCCESS" in checked.stdout


def expected(rules: dict, name: str, **labels) -> dict:
    """The alert `name` with these labels, as promtool reports it firing (labels and annotations)."""
    rule = next(
        r for g in rules["groups"] for r in g["rules"] if r["alert"] == name and labels.items() <= r["labels"].items()
    )
    return {"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}


def test_the_alerts_fire_on_the_series_that_should_fire_them(tmp_path):
    rules, path = write_rules(tmp_path)
    slow = " ".join(str(100 * i) for i in range(12))  # every request in the 2.5-5 s bucket
    cases = {
        "rule_files": [path.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'router_budget_headroom_ratio{budget="team-daily",unit="usd"}',
                        "values": "0.9 0.6 0.15",
                    },
                    {"series": 'router_shift_state{rule="flash-slow",watch="flash"}', "values": "0 1 2"},
                    {"series": 'router_shift_state{rule="reasoner-errors",watch="reasoner"}', "values": "0 0 0"},
                ],
                "alert_rule_test": [
                    {"eval_time": "0m", "alertname": "RouterTrafficShifted", "exp_alerts": []},
                    {"eval_time": "0m", "alertname": "RouterBudget50Percent", "exp_alerts": []},
                    {
                        "eval_time": "2m",
                        "alertname": "RouterTrafficShifted",  # probing is still shifted traffic
                        "exp_alerts": [expected(rules, "RouterTrafficShifted", rule="flash-slow")],
                    },
                    {
                        "eval_time": "2m",
                        "alertname": "RouterBudget80Percent",
                        "exp_alerts": [expected(rules, "RouterBudget80Percent", budget="team-daily")],
                    },
                    {"eval_time": "2m", "alertname": "RouterBudget100Percent", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {"series": 'router_request_duration_seconds_bucket{route="default",le="2.5"}', "values": "0x11"},
                    {"series": 'router_request_duration_seconds_bucket{route="default",le="5.0"}', "values": slow},
                    {"series": 'router_request_duration_seconds_bucket{route="default",le="+Inf"}', "values": slow},
                    {"series": 'router_attempts_total{model_group="deepseek-r1",outcome="ok"}', "values": "0+90x11"},
                    {"series": 'router_attempts_total{model_group="deepseek-r1",outcome="error"}', "values": "0+10x11"},
                ],
                "alert_rule_test": [
                    # Missed from the first minutes, held for the 5 minute window before firing.
                    {"eval_time": "4m", "alertname": "RouterLatencyObjectiveMissed", "exp_alerts": []},
                    {
                        "eval_time": "11m",
                        "alertname": "RouterLatencyObjectiveMissed",
                        "exp_alerts": [expected(rules, "RouterLatencyObjectiveMissed", slo="default-latency")],
                    },
                    {
                        "eval_time": "11m",
                        "alertname": "RouterErrorObjectiveMissed",
                        "exp_alerts": [expected(rules, "RouterErrorObjectiveMissed", slo="reasoner-availability")],
                    },
                ],
            },
        ],
    }
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump(cases, sort_keys=False))
    run = subprocess.run(["promtool", "test", "rules", str(tests)], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


# The fields Grafana needs to import a dashboard (schemaVersion 39), written down here.
PANEL = {
    "type": "object",
    "required": ["id", "type", "title", "gridPos"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "type": {"enum": ["row", "timeseries", "state-timeline", "stat", "gauge"]},
        "title": {"type": "string", "minLength": 1},
        "gridPos": {
            "type": "object",
            "required": ["x", "y", "w", "h"],
            "properties": {
                "x": {"type": "integer", "minimum": 0, "maximum": 23},
                "y": {"type": "integer", "minimum": 0},
                "w": {"type": "integer", "minimum": 1, "maximum": 24},
                "h": {"type": "integer", "minimum": 1},
            },
        },
        "targets": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["refId", "expr"],
                "properties": {"refId": {"type": "string"}, "expr": {"type": "string", "minLength": 1}},
            },
        },
    },
}
DASHBOARD = {
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "time", "templating"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "panels": {"type": "array", "minItems": 1, "items": PANEL},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "required": ["list"]},
    },
}


def test_the_dashboard_has_a_row_per_route_and_a_panel_per_shift_and_budget():
    policy = load_policy(DEFAULT)
    board = json.loads(json.dumps(dashboard(policy)))  # what `python -m router dashboard` prints
    jsonschema.validate(board, DASHBOARD)
    panels = board["panels"]
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == ["Overview", *(f"Route {r.name}" for r in policy.routes), "Shifts", "Budgets"]
    titles = " ".join(p["title"] for p in panels)
    assert all(f"Shift {rule.key}:" in titles for rule in policy.shifts)
    assert all(f"Budget {budget.name} " in titles for budget in policy.budgets)
    # Panels never overlap: each cell of the grid belongs to one panel.
    cells = [
        (p["id"], x, y)
        for p in panels
        for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
        for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
    ]
    assert len({(x, y) for _, x, y in cells}) == len(cells)
