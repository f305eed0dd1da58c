"""The public API is what `router/__init__.py` exports, and importing it does not load litellm."""

from __future__ import annotations

import subprocess
import sys

import router

EXPECTED = {
    "CompiledPolicy",
    "Decision",
    "Identity",
    "Policy",
    "PolicyError",
    "PolicyFile",
    "PolicyIssue",
    "RequestRejected",
    "RequestView",
    "RouterError",
    "RouterSettings",
    "decide",
    "estimate_tokens",
    "install",
    "load_policy",
    "parse_policy",
    "route_body",
}


def test_exports_are_exactly_the_public_api():
    assert set(router.__all__) == EXPECTED


def test_every_export_resolves():
    for name in router.__all__:
        assert getattr(router, name) is not None, name


def test_importing_router_does_not_import_litellm():
    code = "import sys, router, router.ops.cli, router.adapter; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
