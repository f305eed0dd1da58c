"""What the router's metrics (router/engine/metrics.py) look like to an operator, generated from a
policy: Prometheus alerting rules (`python -m router alerts POLICY`) for its shift rules, budgets
and objectives, and a Grafana dashboard (`python -m router dashboard POLICY`) with an overview, a
row per route, a panel per shift rule and per budget."""

from __future__ import annotations

from collections.abc import Iterator

from router.core.budgets import limits
from router.policy.schema import Policy
from router.policy.traffic import Budget

BUDGET_THRESHOLDS = (0.5, 0.8, 1.0)  # shares of a limit spent that alert
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _seconds(value: float) -> str:
    return f"{int(value)}s" if value >= 1 else f"{int(value * 1000)}ms"


# -- alerting rules --------------------------------------------------------------------------------


def alert_rules(policy: Policy) -> dict:
    """A Prometheus rule file (as a dict, to be written as YAML): one group per kind."""
    groups = [
        {"name": "router-shifts", "rules": list(_shift_alerts(policy))},
        {"name": "router-budgets", "rules": list(_budget_alerts(policy))},
        {"name": "router-slos", "rules": list(_slo_alerts(policy))},
    ]
    return {"groups": [group for group in groups if group["rules"]]}


def _shift_alerts(policy: Policy) -> Iterator[dict]:
    for rule in policy.shifts:
        yield {
            "alert": "RouterTrafficShifted",
            "expr": f'max(router_shift_state{{rule="{rule.key}"}}) >= 1',
            "labels": {"severity": "warning", "rule": rule.key, "watch": rule.watched},
            "annotations": {
                "summary": f"Shift '{rule.key}': traffic moved off {rule.watched} to {', '.join(rule.to)}",
                "description": "1: shifted, 2: probing whether it recovered; `python -m router status` tells more.",
            },
        }


def _budget_alerts(policy: Policy) -> Iterator[dict]:
    for budget in policy.budgets:
        for unit, limit in limits(budget):
            for threshold in BUDGET_THRESHOLDS:
                yield _budget_alert(budget, unit, limit, threshold)


def _budget_alert(budget: Budget, unit: str, limit: float, threshold: float) -> dict:
    percent = int(threshold * 100)
    headroom = round(1 - threshold, 6)
    return {
        "alert": f"RouterBudget{percent}Percent",
        "expr": f'min(router_budget_headroom_ratio{{budget="{budget.name}",unit="{unit}"}}) <= {headroom:g}',
        "labels": {"severity": "critical" if threshold >= 1 else "warning", "budget": budget.name, "unit": unit},
        "annotations": {
            "summary": f"Budget '{budget.name}' ({budget.per}, {budget.window}) has {percent} % of its {limit:g} "
            f"{unit} spent for a scope (on exceed: {budget.on_exceed})",
        },
    }


def _slo_alerts(policy: Policy) -> Iterator[dict]:
    for slo in policy.slos:
        window = _seconds(slo.window)
        if slo.route is not None:
            where, latency, counts = f'route="{slo.route}"', "router_request_duration_seconds", "router_requests_total"
            subject = f"route {slo.route}"
        else:
            target = policy.models[_model(policy, slo.model)].target
            where, latency, counts = (
                f'model_group="{target}"',
                "router_attempt_duration_seconds",
                "router_attempts_total",
            )
            subject = f"model {slo.model} ({target})"
        labels = {"severity": "warning", "slo": slo.name}
        if slo.p99 is not None:
            yield {
                "alert": "RouterLatencyObjectiveMissed",
                "expr": f"histogram_quantile(0.99, sum by (le) (rate({latency}_bucket{{{where}}}[{window}]))) "
                f"> {slo.p99:g}",
                "for": window,
                "labels": labels,
                "annotations": {"summary": f"{subject}: p99 latency over {slo.p99:g}s for {window} (SLO {slo.name})"},
            }
        if slo.error_rate is not None:
            errors = f'sum(rate({counts}{{{where},outcome="error"}}[{window}]))'
            yield {
                "alert": "RouterErrorObjectiveMissed",
                "expr": f"{errors} / sum(rate({counts}{{{where}}}[{window}])) > {slo.error_rate:g}",
                "for": window,
                "labels": labels,
                "annotations": {
                    "summary": f"{subject}: error rate over {slo.error_rate:.0%} for {window} (SLO {slo.name})"
                },
            }


def _model(policy: Policy, name: str | None) -> str:
    """A model's name from a name or alias the loader checked."""
    if name in policy.models:
        return name
    return next(m for m, spec in policy.models.items() if name in spec.aliases)


# -- the dashboard ---------------------------------------------------------------------------------


class _Layout:
    """Panels placed left to right, 24 columns to a row; a row panel starts a new line."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.x = self.y = 0

    def row(self, title: str) -> None:
        self.y += 1 if self.x == 0 else 9
        self.x = 0
        self.panels.append(
            {"type": "row", "title": title, "collapsed": False, "gridPos": self._at(24, 1), "panels": []}
        )
        self.y += 1

    def panel(self, title: str, targets: list[tuple[str, str]], kind: str = "timeseries", unit: str = "short") -> None:
        width = 8
        if self.x + width > 24:
            self.x, self.y = 0, self.y + 8
        self.panels.append(
            {
                "type": kind,
                "title": title,
                "datasource": DATASOURCE,
                "gridPos": self._at(width, 8),
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                    for i, (expr, legend) in enumerate(targets)
                ],
            }
        )
        self.x += width

    def _at(self, w: int, h: int) -> dict:
        return {"x": self.x, "y": self.y, "w": w, "h": h}


def dashboard(policy: Policy, title: str = "LiteLLM router") -> dict:
    """A Grafana dashboard (schema 39) over the router's metrics, its panels numbered in order."""
    layout = _Layout()
    layout.row("Overview")
    layout.panel("Requests per second by route", [("sum by (route) (rate(router_requests_total[5m]))", "{{route}}")])
    layout.panel(
        "Cost per 1K requests (USD)",
        [("1000 * sum(rate(router_cost_usd_total[1h])) / sum(rate(router_requests_total[1h]))", "USD / 1K")],
        unit="currencyUSD",
    )
    layout.panel(
        "Cache hit ratio and savings",
        [
            (
                'sum(rate(router_requests_total{cache=~"exact|semantic"}[5m])) / sum(rate(router_requests_total[5m]))',
                "hit ratio",
            ),
            ("sum(rate(router_cache_saved_usd_total[1h])) * 3600", "saved USD / hour"),
        ],
    )
    layout.panel(
        "Fallback and error rate",
        [
            ("sum(rate(router_fallbacks_total[5m])) / sum(rate(router_requests_total[5m]))", "fallbacks"),
            ('sum(rate(router_requests_total{outcome="error"}[5m])) / sum(rate(router_requests_total[5m]))', "errors"),
        ],
        unit="percentunit",
    )
    layout.panel("Tokens per second by kind", [("sum by (kind) (rate(router_tokens_total[5m]))", "{{kind}}")])
    layout.panel(
        "Decision time p99",
        [("histogram_quantile(0.99, sum by (le) (rate(router_decision_seconds_bucket[5m])))", "p99")],
        unit="s",
    )
    for route in policy.routes:
        _route_row(layout, route.name)
    if policy.shifts:
        layout.row("Shifts")
        for rule in policy.shifts:
            layout.panel(
                f"Shift {rule.key}: {rule.watched} -> {', '.join(rule.to)} (0 normal, 1 shifted, 2 probing)",
                [(f'max(router_shift_state{{rule="{rule.key}"}})', "state")],
                kind="state-timeline",
            )
    if policy.budgets:
        layout.row("Budgets")
        for budget in policy.budgets:
            targets = [
                (f'min(router_budget_headroom_ratio{{budget="{budget.name}",unit="{unit}"}})', f"{unit} left")
                for unit, _ in limits(budget)
            ]
            layout.panel(f"Budget {budget.name} ({budget.per}, {budget.window}): headroom", targets, unit="percentunit")
    for number, panel in enumerate(layout.panels, 1):
        panel["id"] = number
    return {
        "title": title,
        "uid": "litellm-router",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "tags": ["litellm", "router"],
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": layout.panels,
    }


def _route_row(layout: _Layout, route: str) -> None:
    where = f'route="{route}"'
    layout.row(f"Route {route}")
    layout.panel(
        f"{route}: requests per second by model",
        [(f"sum by (model) (rate(router_requests_total{{{where}}}[5m]))", "{{model}}")],
    )
    quantiles = [
        (
            f"histogram_quantile({q}, sum by (le) (rate(router_request_duration_seconds_bucket{{{where}}}[5m])))",
            f"p{int(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]
    layout.panel(f"{route}: latency", quantiles, unit="s")
    layout.panel(
        f"{route}: spend per hour (USD)",
        [(f"sum by (model) (rate(router_cost_usd_total{{{where}}}[1h])) * 3600", "{{model}}")],
        unit="currencyUSD",
    )
