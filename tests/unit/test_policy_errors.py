"""Broken policies: each is refused with the file, the line and the key path of the problem."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router import PolicyError, parse_policy

GOOD = """\
version: 1
models:
  flash: {target: deepseek-v4-flash, context: 128k, aliases: [fast]}
  pro: {target: deepseek-v4-pro, context: 200k}
routes:
  - name: reasoning
    when: {any: [prove]}
    use: pro
    fallbacks: [flash]
  - name: default
    use: flash
"""


def broken(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


# (case id, policy text, expected line, expected path, a fragment of the message)
CASES = [
    ("bad-yaml", broken("    use: pro\n", "    use: [pro\n"), 9, "(top level)", "invalid YAML"),
    (
        "unknown-top-key",
        GOOD + "rotues: []\n",
        12,
        "rotues",
        "unknown key 'rotues' (allowed: version, settings, models, routes, cache, access, budgets, shifts, state, "
        "classifier, affinity, ledger, capture, metrics, slos, webhook)",
    ),
    ("unknown-model-key", broken("context: 200k}", "contxt: 200k}"), 4, "models.pro.contxt", "unknown key 'contxt'"),
    (
        "missing-context",
        broken("pro: {target: deepseek-v4-pro, context: 200k}", "pro: {target: deepseek-v4-pro}"),
        4,
        "models.pro.context",
        "missing required key 'context'",
    ),
    ("context-wrong-type", broken("context: 200k", "context: lots"), 4, "models.pro.context", "valid integer"),
    (
        "price-wrong-type",
        broken("context: 200k}", "context: 200k, price: {input: cheap}}"),
        4,
        "models.pro.price.input",
        "valid number",
    ),
    (
        "price-negative",
        broken("context: 200k}", "context: 200k, price: {output: -1}}"),
        4,
        "models.pro.price.output",
        "greater than or equal to 0",
    ),
    ("unknown-model-in-use", broken("    use: pro\n", "    use: gpt5\n"), 8, "routes[0].use", "unknown model 'gpt5'"),
    (
        "unknown-model-in-fallbacks",
        broken("fallbacks: [flash]", "fallbacks: [flash, qwen]"),
        9,
        "routes[0].fallbacks[1]",
        "unknown model 'qwen'",
    ),
    (
        "bad-regex",
        broken("when: {any: [prove]}", "when: {regex: ['(unclosed']}"),
        7,
        "routes[0].when.regex[0]",
        "invalid regex",
    ),
    (
        "empty-keyword",
        broken("any: [prove]", "any: [prove, '  ']"),
        7,
        "routes[0].when.any[1]",
        "keyword must not be empty",
    ),
    (
        "star-inside-keyword",
        broken("any: [prove]", "any: ['pro*ve']"),
        7,
        "routes[0].when.any[0]",
        "'*' is allowed only at the end",
    ),
    (
        "duplicate-route-name",
        broken("name: default", "name: reasoning"),
        10,
        "routes[1].name",
        "duplicate route name 'reasoning'",
    ),
    (
        "duplicate-yaml-key",
        broken("    use: pro\n", "    use: pro\n    use: flash\n"),
        9,
        "routes[0].use",
        "duplicate key",
    ),
    ("missing-version", GOOD.replace("version: 1\n", ""), 1, "version", "missing required key 'version'"),
    ("wrong-version", GOOD.replace("version: 1", "version: 2"), 1, "version", "Input should be 1"),
    (
        "bad-message-scope",
        broken("when: {any: [prove]}", "when: {any: [prove], messages: everything}"),
        7,
        "routes[0].when.messages",
        "'last_user', 'user', 'system' or 'all'",
    ),
    (
        "no-catch-all",
        broken("  - name: default\n    use: flash\n", "  - name: default\n    when: {code: true}\n    use: flash\n"),
        10,
        "routes[1]",
        "the last route must have no `when`",
    ),
    ("unreachable-route", GOOD + "  - name: late\n    use: pro\n", 12, "routes[2]", "unreachable"),
    (
        "alias-clash",
        broken("aliases: [fast]", "aliases: [pro]"),
        3,
        "models.flash.aliases[0]",
        "alias 'pro' is already a model",
    ),
    (
        "token-bounds",
        broken("when: {any: [prove]}", "when: {min_tokens: 5k, max_tokens: 1k}"),
        7,
        "routes[0].when.min_tokens",
        "above max_tokens",
    ),
    (
        "empty-when",
        broken("when: {any: [prove]}", "when: {messages: all}"),
        7,
        "routes[0].when",
        "`when` has no condition",
    ),
    (
        "missing-env-var",
        broken("target: deepseek-v4-pro", 'target: "${ROUTER_TEST_UNSET_VAR}"'),
        4,
        "models.pro.target",
        "environment variable ROUTER_TEST_UNSET_VAR is not set",
    ),
    ("no-models", "version: 1\nmodels: {}\nroutes:\n  - {name: default, use: flash}\n", 2, "models", "at least 1 item"),
    ("reserved-route-name", broken("name: reasoning", "name: explicit"), 6, "routes[0].name", "'explicit' is reserved"),
    (
        "fallback-to-itself",
        broken("fallbacks: [flash]", "fallbacks: [flash, pro]"),
        9,
        "routes[0].fallbacks[1]",
        "the model the route already uses",
    ),
    (
        "fallback-alias-twice",
        broken("fallbacks: [flash]", "fallbacks: [flash, fast]"),
        9,
        "routes[0].fallbacks[1]",
        "listed twice",
    ),
    (
        "auto-model-clash",
        GOOD + "settings: {auto_model: fast}\n",
        12,
        "settings.auto_model",
        "also a model name or alias",
    ),
    ("routes-not-a-list", broken("routes:\n", "routes: {}\n").split("  - name")[0], 5, "routes", "valid tuple"),
    ("empty-file", "# nothing here\n", 1, "(top level)", "the policy file is empty"),
    ("budget-without-limit", GOOD + "budgets:\n  - {name: b, per: key}\n", 13, "budgets[0]", "needs limit_usd"),
    (
        "downgrade-without-target",
        GOOD + "budgets:\n  - {name: b, limit_usd: 1, on_exceed: downgrade}\n",
        13,
        "budgets[0]",
        "needs `to`",
    ),
    (
        "budget-unknown-model",
        GOOD + "budgets:\n  - {name: b, limit_usd: 1, on_exceed: downgrade, to: [nano]}\n",
        13,
        "budgets[0].to[0]",
        "unknown model 'nano'",
    ),
    (
        "budget-unknown-route",
        GOOD + "budgets:\n  - {name: b, limit_usd: 1, routes: [chat]}\n",
        13,
        "budgets[0].routes[0]",
        "unknown route 'chat'",
    ),
    (
        "budget-bad-window",
        GOOD + "budgets:\n  - {name: b, limit_usd: 1, window: fortnight}\n",
        13,
        "budgets[0].window",
        "hour, day, month or 'rolling <duration>'",
    ),
    ("budget-bad-scope", GOOD + "budgets:\n  - {name: b, limit_usd: 1, per: planet}\n", 13, "budgets[0].per", "'key'"),
    (
        "budget-duplicate-name",
        GOOD + "budgets:\n  - {name: b, limit_usd: 1}\n  - {name: b, limit_usd: 2}\n",
        14,
        "budgets[1].name",
        "duplicate budget name 'b'",
    ),
    ("bad-timezone", GOOD + "settings: {timezone: Mars/Olympus}\n", 12, "settings.timezone", "unknown time zone"),
    ("redis-without-url", GOOD + "state: {backend: redis}\n", 12, "state", "needs `url`"),
    ("not-a-mapping", "- just\n- a list\n", 1, "(top level)", "valid dictionary"),
    (
        "shift-two-metrics",
        GOOD + "shifts:\n  - {watch: pro, to: flash, when: {p95_latency: 3s, error_rate: 0.5}}\n",
        13,
        "shifts[0].when",
        "exactly one of p50_latency",
    ),
    (
        "shift-unknown-watch",
        GOOD + "shifts:\n  - {watch: nano, to: flash, when: {p95_latency: 3s}}\n",
        13,
        "shifts[0].watch",
        "unknown model 'nano'",
    ),
    (
        "shift-to-itself",
        GOOD + "shifts:\n  - {watch: pro, to: [flash, pro], when: {p95_latency: 3s}}\n",
        13,
        "shifts[0].to[1]",
        "the watched model itself",
    ),
    (
        "shift-bad-duration",
        GOOD + "shifts:\n  - {watch: pro, to: flash, when: {p95_latency: soon}}\n",
        13,
        "shifts[0].when.p95_latency",
        "valid number",
    ),
    (
        "shift-duplicate",
        GOOD + "shifts:\n  - {watch: pro, to: flash, when: {p95_latency: 3s}}\n"
        "  - {watch: pro, to: flash, when: {p95_latency: 5s}}\n",
        14,
        "shifts[1].name",
        "duplicate shift name 'pro-p95_latency'",
    ),
    (
        "shift-error-rate-range",
        GOOD + "shifts:\n  - {watch: pro, to: flash, when: {error_rate: 1.5}}\n",
        13,
        "shifts[0].when.error_rate",
        "less than or equal to 1",
    ),
    (
        "truncation-smaller-model",
        broken("    fallbacks: [flash]\n", "    fallbacks: [flash]\n    on_truncation: flash\n"),
        10,
        "routes[0].on_truncation",
        "no more than 'pro'",
    ),
    (
        "cache-verify-same-model",
        GOOD + "cache:\n  semantic:\n    verify: local\n",
        14,
        "cache.semantic",
        "another model than `embedder`",
    ),
    (
        "route-negative-retries",
        broken("    fallbacks: [flash]\n", "    fallbacks: [flash]\n    retries: -1\n"),
        10,
        "routes[0].retries",
        "greater than or equal to 0",
    ),
    (
        "capture-without-records",
        GOOD + "ledger: {records: null}\ncapture: {prompts: true}\n",
        13,
        "capture.prompts",
        "captured requests are written with the raw records: `ledger.records` is null",
    ),
    (
        "capture-bad-redaction",
        GOOD + "capture: {prompts: true, redact: ['(unclosed']}\n",
        12,
        "capture.redact",
        "'(unclosed' is not a regular expression",
    ),
]


@pytest.mark.parametrize("text,line,path,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_policy_names_line_and_path(text, line, path, fragment):
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "broken.yaml", env={})
    rendered = [str(issue) for issue in caught.value.issues]
    expected_prefix = f"broken.yaml:{line}: {path}: "
    assert any(r.startswith(expected_prefix) and fragment in r for r in rendered), rendered


def test_there_are_at_least_fifteen_distinct_cases():
    assert len({c[0] for c in CASES}) >= 15


def test_every_problem_is_reported_at_once():
    text = (
        GOOD.replace("use: pro", "use: nope")
        .replace("any: [prove]", "any: ['']")
        .replace("version: 1", "version: 1\nextra: true")
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "many.yaml", env={})
    paths = {issue.path for issue in caught.value.issues}
    assert {("routes", 0, "use"), ("routes", 0, "when", "any", 0), ("extra",)} <= paths
    message = str(caught.value)
    assert "3 problems" in message and "many.yaml:" in message


def test_environment_values_are_interpolated_with_defaults():
    text = GOOD.replace("target: deepseek-v4-pro", 'target: "${PRO_TARGET}"').replace(
        "context: 128k", 'context: "${FLASH_CTX:-64k}"'
    )
    policy = parse_policy(text, env={"PRO_TARGET": "my-pro-group"})
    assert policy.models["pro"].target == "my-pro-group"
    assert policy.models["flash"].context == 64_000


def test_token_counts_accept_suffixes():
    policy = parse_policy(GOOD.replace("context: 200k", "context: 1.5m"), env={})
    assert policy.models["pro"].context == 1_500_000


def test_the_policy_is_frozen():
    policy = parse_policy(GOOD, env={})
    with pytest.raises(ValidationError):
        policy.models["pro"].context = 1  # type: ignore[misc]
