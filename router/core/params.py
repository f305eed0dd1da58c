"""The OpenAI chat parameters every provider would refuse anyway, checked before any attempt.

A request that fails here would otherwise fail at each model of its chain, with retries and
back-off, before the client hears about it: refused at once it costs nothing and says why.
Only the shape is checked (types, ranges, the closed sets OpenAI defines); values a provider
may accept beyond OpenAI's (other tool types, response formats) are let through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from router.errors import RequestRejected

# `isinstance(x, MAPPING)`: a dict, the usual case, matches without the ABC machinery that
# `isinstance(x, Mapping)` runs on every call (a Python frame; dozens a request add up).
MAPPING = (dict, Mapping)
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TOOL_CHOICES = ("none", "auto", "required")


def _number(low: float, high: float) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number from {low:g} to {high:g}"
        return None if low <= value <= high else f"must be from {low:g} to {high:g}"

    return check


def _boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _positive_int(value: object) -> str | None:
    return (
        None if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else "must be a positive integer"
    )


def _integer(value: object) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "must be an integer"


def _object(value: object) -> str | None:
    return None if isinstance(value, MAPPING) else "must be an object"


def _stop(value: object) -> str | None:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(s, str) for s in value)):
        return None
    return "must be a string or a list of strings"


def _typed_object(value: object) -> str | None:
    if not isinstance(value, MAPPING):
        return "must be an object"
    return None if isinstance(value.get("type"), str) else "must have a string `type`"


def _tools(value: object) -> str | None:
    if not isinstance(value, list):
        return "must be a list of tools"
    for i, tool in enumerate(value):
        problem = _typed_object(tool)
        if problem is None and tool["type"] == "function":
            function = tool.get("function")
            if not isinstance(function, MAPPING) or not isinstance(function.get("name"), str) or not function["name"]:
                problem = "is a function tool without `function.name`"
        if problem:
            return f"[{i}] {problem}"
    return None


def _tool_choice(value: object) -> str | None:
    if isinstance(value, str):
        return None if value in _TOOL_CHOICES else f"must be one of {', '.join(_TOOL_CHOICES)} or an object"
    return _typed_object(value)


CHECKS: dict[str, Callable[[object], str | None]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "stream": _boolean,
    "logprobs": _boolean,
    "parallel_tool_calls": _boolean,
    "n": _positive_int,
    "top_logprobs": _number(0, 20),
    "seed": _integer,
    "stop": _stop,
    "stream_options": _object,
    "logit_bias": _object,
    "response_format": _typed_object,
    "tools": _tools,
    "tool_choice": _tool_choice,
}


# LiteLLM reads these from a request body to choose models, deployments, providers, credentials
# or the answer itself: a routed request leaves those to the policy (a client's `fallbacks` served
# a request a budget had downgraded, issue 10). Fields named `mock_*` fake answers or failures.
POLICY_OWNED = frozenset(
    {
        "fallbacks",
        "context_window_fallbacks",
        "content_policy_fallbacks",
        "model_list",
        "user_config",
        "specific_deployment",
        "silent_model",
        "passthrough_on_no_deployment",
        "custom_llm_provider",
        "model_group_retry_policy",
        "api_key",
        "api_base",
        "base_url",
        "api_version",
        "organization",
    }
)


def check_params(body: Mapping) -> None:
    """Raise RequestRejected (400) for a field the policy owns, or the first parameter of the wrong
    shape; null means unset."""
    for name in body:
        if name in POLICY_OWNED or (isinstance(name, str) and name.startswith("mock_")):
            raise RequestRejected(
                400,
                f"`{name}` is decided by the routing policy and the proxy's configuration; remove it from the request",
            )
    for name, check in CHECKS.items():
        value = body.get(name)
        if value is None:
            continue
        problem = check(value)
        if problem:
            raise RequestRejected(400, f"`{name}`{'' if problem.startswith('[') else ' '}{problem}, not {_show(value)}")


def check_role(role: str, index: int) -> None:
    if role not in ROLES:
        raise RequestRejected(400, f"messages[{index}].role must be one of {', '.join(sorted(ROLES))}, not {role!r}")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
