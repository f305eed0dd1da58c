"""One log line per failed request, instead of LiteLLM's traceback per failure.

When every model of a routed request fails, LiteLLM's Router logs each fallback step (three lines
each) and the proxy logs the request's exception with a full traceback: about 60 lines for a
request an operator needs one line about. The router keeps each attempt's error (from the
deployment-level failure hook) and writes that line itself: the request id, the route and every
attempt. A filter on LiteLLM's two loggers drops their lines for those requests; for other provider
failures it keeps LiteLLM's line without the traceback. Tracebacks of anything else, our own bugs
included, are left alone.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from router.adapter.resilience import is_upstream_failure, status_of

log = logging.getLogger("router")
_FALLBACK_FAILED = "litellm.router.py::async_function_with_fallbacks() - Error occurred while trying to do fallbacks"
_KEEP = 10_000  # requests whose attempts are remembered; the oldest go first (a success that was never logged)


class FailureLog:
    def __init__(self) -> None:
        self._attempts: OrderedDict[str, list[str]] = OrderedDict()  # request (LiteLLM call id) -> attempts

    def attempt_failed(self, request: str | None, group: str | None, exc: BaseException) -> None:
        if not request:
            return
        status = status_of(exc)
        self._attempts.setdefault(request, []).append(f"{group} {type(exc).__name__}{f' {status}' if status else ''}")
        self._attempts.move_to_end(request)
        while len(self._attempts) > _KEEP:
            self._attempts.popitem(last=False)

    def knows(self, request: str | None) -> bool:
        return request in self._attempts

    def forget(self, request: str | None) -> None:
        if request is not None:
            self._attempts.pop(request, None)

    def failed(self, request: str | None, route: str, answer: str) -> None:
        """The request's one line: every attempt, counted when an attempt failed alike twice or more."""
        attempts = self._attempts.pop(request, []) if request is not None else []
        counted = OrderedDict.fromkeys(attempts, 0)
        for attempt in attempts:
            counted[attempt] += 1
        shown = "; ".join(f"{a} x{n}" if n > 1 else a for a, n in counted.items()) or "no attempt was made"
        log.warning("request %s, route %s: every model failed, answering %s: %s", request, route, answer, shown)

    def install_filter(self) -> None:
        quiet = _QuietUpstream(self)
        for name in ("LiteLLM Proxy", "LiteLLM Router"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, _QuietUpstream) for f in logger.filters):
                logger.addFilter(quiet)


class _QuietUpstream(logging.Filter):
    def __init__(self, failures: FailureLog) -> None:
        super().__init__()
        self.failures = failures

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(_FALLBACK_FAILED):
            return False  # each fallback step of a request; the request's own line follows
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not is_upstream_failure(exc):
            return True
        if self.failures.knows(getattr(record, "litellm_call_id", None)):
            return False  # ours: the router writes the line, with every attempt
        record.exc_info, record.exc_text = None, None  # a provider's failure, not a bug: its message says it
        return True
