"""Every LiteLLM internal the adapter relies on, named once. LiteLLM documents few of these; each
has a test in tests/unit/test_litellm_api.py that fails when a release changes it, so an upgrade
shows what moved before a request does. Supported: the releases in pyproject.toml's pin.
"""

from __future__ import annotations

from fastapi import HTTPException
from litellm.caching.base_cache import BaseCache
from litellm.caching.caching import Cache, CacheMode
from litellm.integrations.custom_logger import CustomLogger
from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
from litellm.llms.custom_llm import CustomLLM, CustomLLMError
from litellm.proxy._types import LitellmUserRoles, ProxyException, UserAPIKeyAuth

# -- request data ------------------------------------------------------------------------------
# Where a request keeps its metadata: the proxy uses `litellm_metadata` on some routes; logging
# events carry it under `litellm_params`.
METADATA_KEYS = ("litellm_metadata", "metadata")
LOGGED_PARAMS = "litellm_params"
RECORD_KEY = "router"  # our own key in the metadata: the decision record
# What the proxy's key check writes into the metadata (a client cannot set these: it overwrites them).
KEY_HASH, KEY_RAW, KEY_TEAM, KEY_USER = (
    "user_api_key_hash",
    "user_api_key",
    "user_api_key_team_id",
    "user_api_key_user_id",
)
# What the Router adds to an attempt's metadata.
MODEL_GROUP, MODEL_GROUP_SIZE = "model_group", "model_group_size"
# The usage chunk the proxy strips from a stream the client did not ask usage of.
STRIP_STREAM_USAGE = "_litellm_strip_stream_usage"
# What belongs to one LiteLLM call and must not be shared with a second call for the same request.
PER_CALL = frozenset(
    {"litellm_call_id", "litellm_logging_obj", "standard_logging_object", "fallbacks", "model_group_retry_policy"}
)
RATE_LIMIT_RETRIES = "RateLimitErrorRetries"  # a field of the Router's per-group retry policy

# -- responses and logging events --------------------------------------------------------------
SERVED_GROUP_HEADER = "x-litellm-model-group"  # in `_hidden_params["additional_headers"]`
STANDARD_LOG = "standard_logging_object"  # its fields: model_group, model_id, cache_hit, response_cost,
# startTime, endTime, completionStartTime, stream

# -- the response cache ------------------------------------------------------------------------
# Callback names Cache() registers; nothing acts on them (lookups and stores run in the caching
# handler), yet they make every request run the sync success handler on a worker thread.
CACHE_CALLBACK = "cache"
NO_STORE = "no-store"  # the per-request control that keeps an answer out of LiteLLM's response cache
CACHE_OPT_IN = "use-cache"  # the per-request control that opts a request into CacheMode.default_off
CACHING = "caching"  # a call's switch for LiteLLM's response cache lookup (False: none; stores still run)
CACHE_KEY = "cache_key"  # the key a call's answer is looked up and stored under (LiteLLM hashes one otherwise)

# -- hooks -------------------------------------------------------------------------------------
# Where LiteLLM keeps callbacks: `litellm.callbacks`, and the event lists it copies them into at the
# first call (a callback taken out of `callbacks` alone keeps its events).
CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "_async_input_callback",
    "_async_success_callback",
    "_async_failure_callback",
)
# The argument names of every CustomLogger hook we implement, as LiteLLM calls them (by keyword for
# some). The proxy calls async_pre_call_hook only when the class itself defines it.
HOOKS = {
    "async_pre_call_hook": ("user_api_key_dict", "cache", "data", "call_type"),
    "async_post_call_success_hook": ("data", "user_api_key_dict", "response"),
    "async_post_call_response_headers_hook": (
        "data",
        "user_api_key_dict",
        "response",
        "request_headers",
        "litellm_call_info",
    ),
    "async_post_call_streaming_iterator_hook": ("user_api_key_dict", "response", "request_data"),
    "log_pre_api_call": ("model", "messages", "kwargs"),
    "log_success_event": ("kwargs", "response_obj", "start_time", "end_time"),
    "async_log_success_event": ("kwargs", "response_obj", "start_time", "end_time"),
    "log_failure_event": ("kwargs", "response_obj", "start_time", "end_time"),
    "async_log_failure_event": ("kwargs", "response_obj", "start_time", "end_time"),
    "async_post_call_failure_deployment_hook": ("request_data", "exception", "call_type", "fallback_depth"),
    "async_post_call_failure_hook": ("request_data", "original_exception", "user_api_key_dict", "traceback_str"),
    "async_pre_call_deployment_hook": ("kwargs", "call_type"),
}
# The proxy lets the failure hook replace the client's error only with an exception of this type.
FAILURE_HOOK_ERROR = HTTPException

__all__ = [
    "GLOBAL_LOGGING_WORKER",
    "BaseCache",
    "Cache",
    "CacheMode",
    "CustomLLM",
    "CustomLLMError",
    "CustomLogger",
    "HTTPException",
    "LitellmUserRoles",
    "ProxyException",
    "UserAPIKeyAuth",
]
