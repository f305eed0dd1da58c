"""The proxy's log for failed requests: one line each, and tracebacks only for what is not a provider's failure."""

from __future__ import annotations

import logging
import sys

import litellm

from router.adapter.failure_log import FailureLog, _QuietUpstream


def record(exc: BaseException, call_id: str | None = None) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        made = logging.LogRecord("LiteLLM Proxy", logging.ERROR, __file__, 1, "failed: %s", (exc,), sys.exc_info())
    made.litellm_call_id = call_id
    return made


def test_provider_failures_lose_their_traceback_and_bugs_keep_it():
    failures = FailureLog()
    quiet = _QuietUpstream(failures)
    server = litellm.InternalServerError("boom", llm_provider="openai", model="m")
    failures.attempt_failed("ours", "g", server)
    assert not quiet.filter(record(server, "ours"))  # the router writes this request's line itself
    theirs = record(server, "not-routed")
    assert quiet.filter(theirs) and theirs.exc_info is None
    bug = record(AttributeError("'list' object has no attribute 'get'"), "ours")
    assert quiet.filter(bug) and bug.exc_info is not None
    fallback = logging.LogRecord(
        "LiteLLM Router",
        logging.ERROR,
        __file__,
        1,
        "litellm.router.py::async_function_with_fallbacks() - Error occurred while trying to do "
        "fallbacks - x\n\nDebug Information:\nCooldown Deployments=[]",
        (),
        None,
    )
    assert not quiet.filter(fallback)


def test_the_requests_line_counts_alike_attempts(caplog):
    failures = FailureLog()
    server = litellm.InternalServerError("boom", llm_provider="openai", model="m")
    for group in ("a", "a", "b"):
        failures.attempt_failed("r1", group, server)
    with caplog.at_level(logging.WARNING, logger="router"):
        failures.failed("r1", "default", "503")
    assert caplog.records[-1].getMessage() == (
        "request r1, route default: every model failed, answering 503: "
        "a InternalServerError 500 x2; b InternalServerError 500"
    )
    assert not failures.knows("r1")
