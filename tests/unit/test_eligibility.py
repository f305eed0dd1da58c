"""Routes that see who asks and what the request needs: capabilities, access rules, regions, and
the `when` conditions on identity, shape and language (issue 14)."""

from __future__ import annotations

import pytest

from router import CompiledPolicy, PolicyError, RequestRejected, parse_policy, route_body
from router.core.decide import pinned
from router.core.language import detect
from router.core.request import Identity, RequestView
from router.core.shifts import Active, reroute

POLICY = """
version: 1
models:
  cheap:  {target: g-cheap,  context: 32k,  price: {input: 0.1, output: 0.2}, capabilities: [json], region: us}
  tooly:  {target: g-tooly,  context: 64k,  price: {input: 0.3, output: 0.6}, capabilities: [tools, json], region: us}
  seer:   {target: g-seer,   context: 128k, price: {input: 2, output: 8}, region: us,
           capabilities: [vision, tools, json_schema]}
  eu:     {target: g-eu,     context: 64k,  price: {input: 0.3, output: 0.6}, capabilities: [tools, json], region: eu}
  eu-big: {target: g-eu-big, context: 128k, price: {input: 0.6, output: 1.2}, capabilities: [tools, json], region: eu}
access:
  - {name: free, who: {tags: [free]}, deny: [seer], on_deny: downgrade, to: tooly}
  - {name: strict-free, who: {tags: [strict]}, deny: [seer]}
  - {name: eu-legal, who: {teams: [eu-legal]}, regions: [eu]}
routes:
  - {name: pictures, when: {images: true}, use: seer}
  - {name: agents, when: {tools: true, stream: false}, use: tooly, fallbacks: [eu]}
  - {name: premium, when: {metadata: {tier: [gold]}}, use: seer, fallbacks: [tooly]}
  - {name: chinese, when: {language: [zh]}, use: eu}
  - {name: long-answers, when: {min_output_tokens: 4000}, use: eu-big}
  - {name: default, use: cheap, fallbacks: [tooly, eu]}
"""
COMPILED = CompiledPolicy(parse_policy(POLICY, env={}))
IMAGE = [{"type": "text", "text": "What is in this picture?"}, {"type": "image_url", "image_url": {"url": "x"}}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def ask(content="hello there", model="auto", identity=None, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return route_body(COMPILED, body, identity)


@pytest.mark.parametrize(
    "text,language",
    [
        ("Summarize the main trade-offs between renting and buying a home.", "en"),
        ("用 Python 写一个排序函数", "zh"),
        ("请一步一步解释为什么天空是蓝色的", "zh"),
        ("この関数がエラーを投げる理由を説明してください", "ja"),
        ("이 함수가 왜 오류를 발생시키는지 설명해 주세요", "ko"),
        ("Почему небо голубое?", "ru"),
        ("Pourquoi le ciel est-il bleu? Explique-moi comment cela fonctionne.", "fr"),
        ("Warum ist der Himmel blau? Ich verstehe das nicht.", "de"),
        ("¿Por qué el cielo es azul? Explícame cómo funciona.", "es"),
        ("12345 + 678", "und"),
    ],
)
def test_the_language_detector(text, language):
    assert detect(text) == language


def test_what_a_request_needs_is_read_from_its_parts_and_parameters():
    def needs(**body):
        return RequestView({"model": "auto", **body}, 10**6).needs

    user = [{"role": "user", "content": "hi"}]
    assert needs(messages=[{"role": "user", "content": IMAGE}]) == {"vision"}
    audio = [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]
    assert needs(messages=[{"role": "user", "content": audio}]) == {"audio"}
    assert needs(messages=user, tools=TOOLS) == {"tools"}
    history = [*user, {"role": "assistant", "tool_calls": [{"id": "1"}]}, {"role": "tool", "content": "42"}]
    assert needs(messages=history) == {"tools"}
    assert needs(messages=user, response_format={"type": "json_schema", "json_schema": {}}) == {"json_schema"}
    assert needs(messages=user, response_format={"type": "json_object"}) == {"json"}
    assert needs(messages=user, reasoning_effort="high") == {"reasoning"}
    assert needs(messages=user, response_format={"type": "text"}) == frozenset()


def test_an_image_goes_to_the_model_that_sees_and_never_to_one_that_cannot():
    decision = ask(IMAGE)
    assert (decision.route, decision.model) == ("pictures", "seer")
    with pytest.raises(RequestRejected) as refused:
        ask(IMAGE, model="cheap")
    assert refused.value.status == 400
    assert "images (vision)" in refused.value.message and "models that can: seer" in refused.value.message


def test_a_tools_request_skips_models_without_tools_in_its_chain():
    assert ask("look this up", tools=TOOLS).route == "agents"
    decision = ask("look this up", tools=TOOLS, stream=True)  # not `agents` (stream: false): the default
    assert decision.route == "default" and decision.model == "tooly"  # `cheap` has no tools
    assert decision.fallbacks == ("g-eu",)
    assert any("'cheap' cannot take tools" in r for r in decision.reasons)


def test_free_keys_cannot_reach_the_premium_model_even_by_naming_it():
    free = Identity(key_hash="k1", tags=("free",))
    named = ask(model="seer", identity=free)
    assert named.model == "tooly" and "downgraded to 'tooly'" in named.reason
    strict = Identity(key_hash="k2", tags=("strict",))
    with pytest.raises(RequestRejected) as refused:
        ask(model="seer", identity=strict)
    assert refused.value.status == 403 and "strict-free" in refused.value.message
    with pytest.raises(RequestRejected) as image:
        ask(IMAGE, identity=strict)  # only seer sees, and this key may not use it
    assert image.value.status == 403 and "vision" in image.value.message


def test_metadata_and_identity_conditions_read_the_authenticated_identity():
    gold = Identity(key_hash="k3", metadata=(("tier", "gold"),))
    assert ask(identity=gold).route == "premium"
    assert ask(identity=Identity(key_hash="k4")).route == "default"
    free_gold = Identity(key_hash="k5", tags=("free",), metadata=(("tier", "gold"),))
    decision = ask(identity=free_gold)
    assert decision.route == "premium" and decision.model == "tooly"  # seer is denied: its fallback serves


def test_language_and_expected_output_conditions():
    assert ask("请解释一下为什么天空是蓝色的").route == "chinese"
    assert ask("Write me a long essay", max_tokens=8000).route == "long-answers"
    assert ask("Write me a long essay", max_tokens=100).route == "default"


def test_a_team_pinned_to_a_region_stays_there():
    legal = Identity(key_hash="k6", team="eu-legal")
    decision = ask(identity=legal)
    assert decision.model == "eu" and decision.fallbacks == ()
    with pytest.raises(RequestRejected) as refused:
        ask(model="cheap", identity=legal)
    assert refused.value.status == 403 and "runs in region us" in refused.value.message


def test_senders_taking_turns_each_keep_their_own_models():
    """A policy keeps each sender's tables (the route loop is a lookup per route): senders in turn,
    and thousands of them, never get another's."""
    compiled = CompiledPolicy(parse_policy(POLICY, env={}))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello there"}]}
    legal, free = Identity(key_hash="k7", team="eu-legal"), Identity(key_hash="k8", tags=("free",))
    for _ in range(3):
        assert route_body(compiled, body, legal).model == "eu"
        assert route_body(compiled, body, free).fallbacks == ("g-tooly", "g-eu")
        assert route_body(compiled, {**body, "tools": TOOLS}, legal).model == "eu"
    for n in range(5000):
        assert route_body(compiled, body, Identity(key_hash=f"k{n}", team="eu-legal")).model == "eu"
    assert route_body(compiled, body, free).model == "cheap"


def test_shifts_skip_models_the_request_cannot_use():
    legal = Identity(key_hash="k6", team="eu-legal")
    decision = ask(identity=legal)
    # a shift of eu onto us models: the pinned team stays in its region
    shift = Active("eu-slow", "eu", ("tooly", "eu-big"), 100.0, 10.0, "shifted", "slow", False)
    moved = reroute(COMPILED, decision, {"eu": shift}, {}, now=0, draw=0.0, pick=0)
    assert moved.model == "eu-big"
    tools = ask("look this up", tools=TOOLS, stream=True)
    only_cheap = Active("tooly-slow", "tooly", ("cheap",), 100.0, 10.0, "shifted", "slow", False)
    assert reroute(COMPILED, tools, {"tooly": only_cheap}, {}, now=0, draw=0.0, pick=0).model == "tooly"


def test_affinity_keeps_a_conversation_only_on_a_model_it_may_use():
    decision = ask(IMAGE)
    assert pinned(COMPILED, decision, "default", "cheap", "kept") is None  # cheap cannot see the image
    plain = ask()
    assert pinned(COMPILED, plain, "default", "tooly", "kept").model == "tooly"


def test_budget_downgrades_skip_models_the_request_cannot_use():
    from router.engine.budget_book import BudgetBook
    from router.state.memory import MemoryStore

    policy = POLICY.replace(
        "routes:",
        "budgets:\n  - {name: tight, per: global, window: day, limit_usd: 0.000001, on_exceed: downgrade, "
        "to: [cheap, eu], models: [tooly]}\nroutes:",
    )
    compiled = CompiledPolicy(parse_policy(policy, env={}))
    tools = route_body(compiled, {"model": "auto", "messages": [{"role": "user", "content": "go"}], "tools": TOOLS})
    book = BudgetBook(MemoryStore())
    admission = book.admit(compiled, tools.route, tools.model, Identity(), (), 10, 10, eligible=tools.eligible)
    assert tools.model == "tooly" and admission.model == "eu"  # the ladder's first step, cheap, has no tools
    assert admission.downgraded_from == "tooly"


@pytest.mark.parametrize(
    "change,path,message",
    [
        ("  - {name: pictures, when: {images: true}, use: seer}", "routes[0].use", None),
        ("  - {name: pictures, when: {images: true}, use: cheap}", "routes[0].use", "lacks the capability 'vision'"),
        (
            "  - {name: pictures, when: {images: true}, use: seer, regions: [mars]}",
            "routes[0].regions[0]",
            "unknown region 'mars'",
        ),
        (
            "  - {name: pictures, when: {images: true}, use: seer, regions: [eu]}",
            "routes[0].use",
            "not in the route's eu",
        ),
    ],
)
def test_contradictions_are_policy_errors(change, path, message):
    text = POLICY.replace("  - {name: pictures, when: {images: true}, use: seer}", change)
    if message is None:
        parse_policy(text, env={})
        return
    with pytest.raises(PolicyError) as error:
        parse_policy(text, file="p.yaml", env={})
    shown = str(error.value)
    assert path in shown and message in shown, shown


def test_access_rules_name_models_and_regions_that_exist():
    with pytest.raises(PolicyError) as error:
        parse_policy(POLICY.replace("deny: [seer], on_deny", "deny: [sear], on_deny"), file="p.yaml", env={})
    assert "access[0].deny[0]" in str(error.value) and "unknown model 'sear'" in str(error.value)
    with pytest.raises(PolicyError) as error:
        parse_policy(POLICY.replace("regions: [eu]}", "regions: [asia]}"), file="p.yaml", env={})
    assert "access[2].regions[0]" in str(error.value)
    with pytest.raises(PolicyError) as error:
        parse_policy(POLICY.replace("on_deny: downgrade, to: tooly", "on_deny: downgrade"), file="p.yaml", env={})
    assert "needs `to`" in str(error.value)


def test_a_shift_can_watch_a_region_and_a_pinned_team_stays_in_it():
    from router.core.shifts import SHIFTED, ShiftState, active_shifts
    from router.core.windows import Mirror

    rule = (
        "shifts:\n  - {name: eu-slow, region: eu, when: {p99_latency: 2.5s, window: 5m, min_samples: 5}, to: [tooly]}\n"
    )
    compiled = CompiledPolicy(parse_policy(POLICY + rule, env={}))
    assert [r.key for r in compiled.policy.shifts] == ["eu-slow"] and compiled.watched(compiled.policy.shifts[0]) == [
        "eu",
        "eu-big",
    ]
    active = active_shifts(compiled, {"eu-slow": ShiftState(SHIFTED, 0.0, 100.0, 3.0, "p99 3.00s > 2.50s")})
    assert set(active) == {"eu", "eu-big"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "请解释一下为什么天空是蓝色的"}]}
    anyone = route_body(compiled, body)
    assert anyone.model == "eu" and reroute(compiled, anyone, active, {}, 0, 0.0, 0).model == "tooly"
    legal = route_body(compiled, body, Identity(key_hash="k6", team="eu-legal"))
    assert reroute(compiled, legal, active, {}, 0, 0.0, 0).model == "eu"  # its shift target is in us
    mirror = Mirror(600)  # a region's figures are its model groups' together
    mirror.put("g-eu", 0, {"n": 3, "e": 1})
    mirror.put("g-eu-big", 0, {"n": 2})
    figures = mirror.figures(("g-eu", "g-eu-big"), 0, 10)
    assert (figures.requests, figures.errors) == (5, 1)


def test_a_shift_watches_a_model_or_a_region_not_both():
    both = "shifts:\n  - {watch: eu, region: eu, when: {error_rate: 0.5}, to: [tooly]}\n"
    with pytest.raises(PolicyError, match="one of the two"):
        parse_policy(POLICY + both, env={})
    unknown = "shifts:\n  - {region: mars, when: {error_rate: 0.5}, to: [tooly]}\n"
    with pytest.raises(PolicyError, match="unknown region 'mars'"):
        parse_policy(POLICY + unknown, env={})


def test_the_identity_takes_request_fields_only_where_the_policy_trusts_them():
    key = {"key_hash": "h", "team": "t", "user": "u", "key_alias": "bot", "ignored": "x"}
    own = {"tags": ["free"], "tier": "gold", "regions": ["eu", "us"], "flag": True, "nested": {"a": 1}}
    sent = {"tags": ["vip"], "tier": "platinum", "department": "legal"}
    strict = Identity.of(key, own, sent)
    assert (strict.key_hash, strict.team, strict.user, strict.key_alias) == ("h", "t", "u", "bot")
    assert strict.tags == ("free",) and strict.values("tier") == ("gold",)
    assert strict.values("regions") == ("eu", "us") and strict.values("department") == ()
    assert strict.values("flag") == () and strict.values("nested") == ()  # neither text nor a number
    trusting = Identity.of(key, own, sent, trust_request_tags=True, trusted_metadata=("department",))
    assert trusting.tags == ("free", "vip") and trusting.values("department") == ("legal",)
    assert trusting.values("tier") == ("gold",)  # an untrusted field of the request never counts


MULTI = """
version: 1
models:
  glm: {target: g-glm, context: 128k, region: [eu, us]}
  qwen: {target: g-qwen, context: 32k, region: eu}
access:
  - {name: eu-residency, who: {teams: [eu-legal]}, regions: [eu]}
routes:
  - {name: default, use: glm, fallbacks: [qwen]}
"""


def test_a_model_in_several_regions_is_served_from_the_pinned_one():
    from router.engine.pipeline import attempt_params

    compiled = CompiledPolicy(parse_policy(MULTI, env={}))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
    pinned_decision = route_body(compiled, body, Identity(key_hash="k", team="eu-legal"))
    assert pinned_decision.model == "glm" and pinned_decision.fallbacks == ("g-qwen",)
    assert attempt_params(compiled, pinned_decision, body)["allowed_model_region"] == "eu"
    anyone = route_body(compiled, body)
    assert "allowed_model_region" not in attempt_params(compiled, anyone, body)


def test_a_model_in_several_regions_needs_the_proxy_to_know_its_deployments_regions():
    from router.policy.loader import Groups

    def problems(model_list, router_settings=None):
        groups = Groups.of("config.yaml", model_list, router_settings)
        try:
            parse_policy(MULTI, file="p.yaml", env={}, groups=groups)
        except PolicyError as error:
            return str(error)
        return ""

    def deployment(group, region):
        return {"model_name": group, "litellm_params": {"model": f"openai/{group}", "region_name": region}}

    good = [deployment("g-glm", "eu"), deployment("g-glm", "us"), deployment("g-qwen", "eu")]
    assert problems(good, {"enable_pre_call_checks": True}) == ""
    assert "enable_pre_call_checks" in problems(good)
    shown = problems([*good[:2], deployment("g-qwen", None)], {"enable_pre_call_checks": True})
    assert "models.qwen.region" in shown and "region_name None" in shown
    assert "no deployment in us" in problems([good[0], good[2]], {"enable_pre_call_checks": True})
