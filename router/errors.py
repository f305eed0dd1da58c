"""Every exception the router raises on purpose.

RouterError
 ├── PolicyError        a policy file is invalid; `.issues` lists every problem found
 └── RequestRejected    the policy refuses a request; `.status` is the HTTP status to answer
"""

from __future__ import annotations

from dataclasses import dataclass


def format_path(path: tuple[str | int, ...]) -> str:
    """('routes', 2, 'when', 'any', 0) -> 'routes[2].when.any[0]'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@dataclass(frozen=True, order=True)
class PolicyIssue:
    file: str
    line: int | None
    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {format_path(self.path)}: {self.message}"


class RouterError(Exception):
    """Base of every error the router raises on purpose."""


class PolicyError(RouterError):
    def __init__(self, issues: list[PolicyIssue]):
        self.issues = sorted(issues, key=lambda i: (i.file, i.line or 0, format_path(i.path), i.message))
        count = len(self.issues)
        lines = "\n".join(f"  {issue}" for issue in self.issues)
        super().__init__(f"invalid policy ({count} problem{'s' if count != 1 else ''}):\n{lines}")


class RequestRejected(RouterError):
    """A request the policy will not serve, with the HTTP status and a message for the client."""

    def __init__(self, status: int, message: str, retry_after: float | None = None):
        self.status = status
        self.message = message
        self.retry_after = retry_after  # seconds, sent as a Retry-After header
        super().__init__(f"{status}: {message}")

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(max(1, int(self.retry_after + 0.999)))}
