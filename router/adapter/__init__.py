"""The LiteLLM adapter: the only package that imports litellm.

config.yaml registers `router.adapter.handler`. Naming this package (not a module file) matters:
LiteLLM runs a named *file* beside config.yaml as a loose script, a second copy of its state.
The handler is built on first access, after the proxy has applied config.yaml's settings.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "handler":
        from router.adapter.proxy import build_handler

        globals()["handler"] = built = build_handler()
        return built
    raise AttributeError(f"module 'router.adapter' has no attribute {name!r}")
