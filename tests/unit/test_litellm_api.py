"""Each LiteLLM internal router.adapter.litellm_api names, checked against the installed release:
a release that renames or moves one fails here, not on a request."""

from __future__ import annotations

import inspect
from pathlib import Path

import litellm
import pytest

from router.adapter import litellm_api as api
from router.adapter.proxy import PolicyRouter
from router.adapter.sdk import _SdkHooks
from tests.helpers import poll_until

LITELLM = Path(litellm.__file__).parent


def parameters(function) -> tuple[str, ...]:
    return tuple(name for name in inspect.signature(function).parameters if name != "self")


@pytest.mark.parametrize("hook", sorted(api.HOOKS))
def test_hook_signatures_are_litellms(hook):
    assert parameters(getattr(api.CustomLogger, hook)) == api.HOOKS[hook]


@pytest.mark.parametrize("cls", [PolicyRouter, _SdkHooks])
def test_our_hooks_take_what_litellm_passes(cls):
    ours = {name for name in vars(cls) if name in api.HOOKS}
    assert ours, "the class implements hooks"
    for name in ours:
        assert parameters(getattr(cls, name)) == api.HOOKS[name], name
    assert not {n for n in vars(cls) if n.startswith(("async_", "log_")) and n not in api.HOOKS}, "a hook not listed"


def test_the_proxy_runs_a_pre_call_hook_only_when_the_class_defines_it():
    source = (LITELLM / "proxy" / "utils.py").read_text()
    assert '"async_pre_call_hook" in vars(_callback.__class__)' in source
    assert "async_pre_call_hook" in vars(PolicyRouter)


def test_the_failure_hook_may_replace_the_error_only_with_an_http_exception():
    from litellm.proxy.utils import ProxyLogging

    returns = inspect.signature(ProxyLogging.post_call_failure_hook).return_annotation
    assert returns == api.FAILURE_HOOK_ERROR | None or str(returns).startswith("fastapi.exceptions.HTTPException")


def test_metadata_lives_under_one_of_two_keys():
    from litellm.litellm_core_utils.core_helpers import get_metadata_variable_name_from_kwargs

    assert get_metadata_variable_name_from_kwargs({"litellm_metadata": {}}) == api.METADATA_KEYS[0]
    assert get_metadata_variable_name_from_kwargs({}) == api.METADATA_KEYS[1]


def test_the_key_check_writes_the_fields_our_cache_reads():
    from litellm.types.utils import StandardLoggingUserAPIKeyMetadata

    fields = StandardLoggingUserAPIKeyMetadata.__annotations__
    assert {api.KEY_HASH, api.KEY_TEAM, api.KEY_USER} <= set(fields)
    source = (LITELLM / "proxy" / "litellm_pre_call_utils.py").read_text()
    assert f'["{api.KEY_RAW}"] =' in source


def test_the_standard_logging_payload_has_the_fields_we_read():
    from litellm.types.utils import StandardLoggingPayload

    wanted = {
        "model_group",
        "model_id",
        "cache_hit",
        "response_cost",
        "startTime",
        "endTime",
        "completionStartTime",
        "stream",
    }
    assert wanted <= set(StandardLoggingPayload.__annotations__)


def test_the_proxy_strips_the_usage_chunk_it_is_told_to():
    source = (LITELLM / "proxy" / "common_request_processing.py").read_text()
    assert f'"{api.STRIP_STREAM_USAGE}"' in source


def test_per_call_fields_are_the_proxys():
    source = (LITELLM / "proxy" / "common_request_processing.py").read_text()
    for field in ("litellm_call_id", "litellm_logging_obj"):
        assert f'self.data["{field}"]' in source
    assert {"litellm_call_id", "litellm_logging_obj", "fallbacks", "model_group_retry_policy"} <= api.PER_CALL


def test_the_router_retry_policy_has_a_rate_limit_field():
    from litellm.types.router import RetryPolicy

    assert api.RATE_LIMIT_RETRIES in RetryPolicy.model_fields


def test_the_logging_worker_can_be_flushed():
    assert inspect.iscoroutinefunction(api.GLOBAL_LOGGING_WORKER.flush)


class Recorder(api.CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict] = []

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self.events.append(kwargs)


def test_a_router_call_carries_our_metadata_and_names_its_group():
    """One real Router call (LiteLLM's mock response: no network): our record rides in the logged
    metadata as the same object, the Router adds the group and its size, and the answer names the
    group that served it."""
    recorder = Recorder()
    litellm.callbacks.append(recorder)
    try:
        router = litellm.Router(
            model_list=[
                {
                    "model_name": "g",
                    "litellm_params": {"model": "openai/x", "api_key": "sk-none", "mock_response": "hi"},
                }
            ]
        )
        record = {"route": "r"}
        response = router.completion(
            model="g",
            messages=[{"role": "user", "content": "hi"}],
            metadata={api.RECORD_KEY: record},
            model_group_retry_policy={"g": {api.RATE_LIMIT_RETRIES: 0}},
        )
        (event,) = poll_until(lambda: recorder.events, 10, "the success event")
    finally:
        litellm.callbacks.remove(recorder)
    metadata = event[api.LOGGED_PARAMS]["metadata"]
    assert metadata[api.RECORD_KEY] is record
    assert metadata[api.MODEL_GROUP] == "g" and metadata[api.MODEL_GROUP_SIZE] == 1
    assert event[api.STANDARD_LOG]["model_group"] == "g"
    assert response._hidden_params["additional_headers"][api.SERVED_GROUP_HEADER] == "g"


class Backend(api.BaseCache):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def get_cache(self, key, **kwargs):
        self.lookups += 1

    def set_cache(self, key, value, **kwargs):
        pass

    async def async_set_cache_pipeline(self, cache_list, **kwargs):
        pass


def test_the_opt_in_cache_mode_looks_up_only_requests_that_ask():
    saved = litellm.cache
    backend = Backend()
    try:
        litellm.cache = api.Cache(
            _backend=backend, mode=api.CacheMode.default_off, supported_call_types=["completion"], max_messages=None
        )
        assert api.CACHE_CALLBACK in litellm.input_callback + litellm.success_callback  # what services removes
        ask = {
            "model": "openai/x",
            "api_key": "sk-none",
            "mock_response": "hi",
            "temperature": 0,
            "messages": [{"role": "user", "content": "hi"}],
        }
        litellm.completion(**ask)
        assert backend.lookups == 0
        litellm.completion(**ask, cache={api.CACHE_OPT_IN: True})
        assert backend.lookups == 1
        # The switch the pipeline sets for requests it will not cache: no lookup even when opted in,
        # because the handler stops before it hashes anything.
        litellm.completion(**ask, cache={api.CACHE_OPT_IN: True}, **{api.CACHING: False})
        assert backend.lookups == 1
    finally:
        litellm.cache = saved
        for callbacks in (litellm.input_callback, litellm.success_callback, litellm._async_success_callback):
            while api.CACHE_CALLBACK in callbacks:
                callbacks.remove(api.CACHE_CALLBACK)


def test_the_sdk_provider_registry_is_where_install_puts_it():
    assert isinstance(litellm.custom_provider_map, list) and isinstance(litellm.model_alias_map, dict)
    assert callable(litellm.utils.custom_llm_setup)
    assert {"completion", "acompletion", "streaming", "astreaming"} <= set(vars(api.CustomLLM))
