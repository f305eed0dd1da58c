"""What the proxy callback and the SDK provider share: recording a decision and showing it in headers."""

from __future__ import annotations

from collections.abc import Mapping

from router.core.decide import Decision

_METADATA_KEYS = ("litellm_metadata", "metadata")  # the proxy uses the first on some routes


def apply_decision(decision: Decision, data: dict) -> None:
    """Point the request at the chosen model group, with its fallbacks, and keep the decision for logs."""
    data["model"] = decision.target
    if decision.fallbacks:
        # The Router reads only the last of a plain list of names; the mapping form keeps the order.
        data["fallbacks"] = [{decision.target: list(decision.fallbacks)}]
    key = next((k for k in _METADATA_KEYS if isinstance(data.get(k), dict)), "metadata")
    data.setdefault(key, {})
    if not isinstance(data[key], dict):
        data[key] = {}
    data[key]["router"] = decision.as_dict()


def decision_of(data: Mapping) -> dict | None:
    for key in _METADATA_KEYS:
        metadata = data.get(key)
        if isinstance(metadata, Mapping) and isinstance(metadata.get("router"), dict):
            return metadata["router"]
    return None


def decision_headers(decision: Mapping) -> dict[str, str]:
    return {
        "x-router-route": _header_value(decision["route"]),
        "x-router-model": _header_value(decision["target"]),
        "x-router-reason": _header_value("; ".join(decision["reasons"])),
        "x-router-cache": decision.get("cache", "off"),
    }


def _header_value(text: str, limit: int = 512) -> str:
    """HTTP header values must be one line of Latin-1; escape the rest and keep them short."""
    flat = " ".join(text.split())
    return flat.encode("ascii", "backslashreplace").decode("ascii")[:limit]
