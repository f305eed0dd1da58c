"""Loaded by every Python process started with this directory on PYTHONPATH (scripts/bench_hooks.py
starts the proxy so): times the plugin's own work in the proxy, for the benchmark only.

Each hook LiteLLM calls on the plugin, the response cache backend's calls, the body guard's checks,
the key check and the plugin's background threads' steps are timed in CPU time of the thread that
runs them, without the garbage collections that fall inside them (counted apart, for the whole
process). With ROUTER_HOOK_DETAIL set, the steps inside the pre-call hook and the writer are timed
too, under names ("within: ...") the plugin's total leaves out, since the hook's time holds them. SIGUSR1 writes
the totals to the file ROUTER_HOOK_TIMES names: {part: [calls, nanoseconds]}.
"""

from __future__ import annotations

import functools
import gc
import importlib.abc
import importlib.util
import inspect
import json
import os
import signal
import sys
import threading
import time

_TOTALS: dict[str, list[int]] = {}
_GC_BY_THREAD: dict[int, int] = {}  # CPU time of the collections each thread ran
_gc_began: dict[int, int] = {}


def _add(part: str, nanoseconds: int) -> None:
    found = _TOTALS.setdefault(part, [0, 0])
    found[0] += 1
    found[1] += nanoseconds


def _timed(part: str, fn):
    if inspect.isasyncgenfunction(fn):
        return fn  # a streaming hook: its time is spread over the chunks it yields
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args, **kwargs):
            thread = threading.get_ident()
            began, collected = time.thread_time_ns(), _GC_BY_THREAD.get(thread, 0)
            try:
                return await fn(*args, **kwargs)
            finally:
                _add(part, time.thread_time_ns() - began - (_GC_BY_THREAD.get(thread, 0) - collected))

        return run_async

    @functools.wraps(fn)
    def run(*args, **kwargs):
        thread = threading.get_ident()
        began, collected = time.thread_time_ns(), _GC_BY_THREAD.get(thread, 0)
        try:
            return fn(*args, **kwargs)
        finally:
            _add(part, time.thread_time_ns() - began - (_GC_BY_THREAD.get(thread, 0) - collected))

    return run


def _collection(phase: str, info: dict) -> None:
    thread = threading.get_ident()
    if phase == "start":
        _gc_began[thread] = time.thread_time_ns()
        return
    spent = time.thread_time_ns() - _gc_began.pop(thread, time.thread_time_ns())
    _GC_BY_THREAD[thread] = _GC_BY_THREAD.get(thread, 0) + spent
    _add(f"gc generation {info['generation']}", spent)


def _proxy(module) -> None:
    cls = module.PolicyRouter
    for name in [n for n in vars(cls) if n.startswith(("async_", "log_"))]:
        setattr(cls, name, _timed(f"hook {name}", getattr(cls, name)))


def _cache(module) -> None:
    cls = module.PolicyCache
    for name in [n for n in vars(cls) if n.startswith("async_")]:  # the sync forms run inside them
        setattr(cls, name, _timed(f"cache backend {name}", getattr(cls, name)))


def _guard(module) -> None:
    module.parse_body = _timed("body guard: parse and shape", module.parse_body)
    module.litellm_body_check = _timed("body guard: LiteLLM's field check", module.litellm_body_check)


def _auth(module) -> None:
    module.authenticate = _timed("key check (both proxies run it)", module.authenticate)


def _runtime(module) -> None:
    loop = module.Runtime._loop

    def timed_loop(self, step, interval):
        return loop(self, _timed(f"background: {step.__name__}", step), interval)

    module.Runtime._loop = timed_loop


def _inside(owner, names: tuple[str, ...]) -> None:
    """Steps of the pre-call hook or the writer, timed where they are looked up (a module's globals or a class)."""
    for name in names:
        timed = _timed(f"within: {owner.__name__.rsplit('.', 1)[-1]}.{name}", getattr(owner, name))
        static = isinstance(inspect.getattr_static(owner, name), staticmethod)
        setattr(owner, name, staticmethod(timed) if static else timed)


_DETAIL = {
    "router.core.decide": lambda m: (_inside(m, ("decide",)), _inside(m.CompiledPolicy, ("verdict", "eligibility"))),
    "router.core.request": lambda m: _inside(m.RequestView, ("__init__",)),
    "router.core.classify": lambda m: (_inside(m, ("hashed",)), _inside(m.Classifier, ("verdict",))),
    "router.cache.embedders": lambda m: _inside(m.StaticEmbedder, ("embed",)),
    "router.engine.pipeline": lambda m: _inside(
        m, ("route_body", "attempt_params", "_captured", "_reasoning_controls", "_look_up", "answer_params")
    ),
    "router.cache.service": lambda m: _inside(m.ResponseCache, ("lookup", "_record", "_semantic", "key_of", "save")),
    "router.cache.index": lambda m: _inside(m.VectorIndex, ("search",)),
    "router.cache.guard": lambda m: _inside(m, ("choose",)),
    "router.cache.keys": lambda m: _inside(m, ("semantic_text", "partition_key")),
    "router.cache.rules": lambda m: _inside(m.RuleBook, ("rule",)),
    "router.engine.affinity": lambda m: _inside(m.Conversations, ("steer", "flush")),
    "router.engine.health": lambda m: _inside(m.Health, ("reroute", "tick")),
    "router.engine.runtime": lambda m: _inside(m.Runtime, ("_run_later",)),
    "router.engine.accounting": lambda m: _inside(m.Accounting, ("admit", "succeeded")),
    "router.engine.budget_book": lambda m: _inside(m.BudgetBook, ("admit", "flush")),
    "router.engine.ledger": lambda m: _inside(m.Ledger, ("flush",)),
    "router.engine.metrics": lambda m: _inside(m.Metrics, ("flush",)),
    "router.engine.record": lambda m: _inside(m, ("new_record",)),
    "router.adapter.proxy": lambda m: _inside(m, ("apply_admitted", "_identity", "_ask_for_stream_usage")),
}

_PATCHES = {
    "router.adapter.proxy": _proxy,
    "router.adapter.body_guard": _guard,
    "router.adapter.cache_backend": _cache,
    "router.adapter.auth": _auth,
    "router.engine.runtime": _runtime,
}


class _Finder(importlib.abc.MetaPathFinder):
    """Patches a module of the plugin as soon as it has been executed, before anyone uses it."""

    def find_spec(self, name, path, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            patch(module)

        spec.loader.exec_module = exec_module
        return spec


def _dump(*_) -> None:
    with open(os.environ["ROUTER_HOOK_TIMES"] + ".tmp", "w") as out:
        json.dump(_TOTALS, out)
    os.replace(os.environ["ROUTER_HOOK_TIMES"] + ".tmp", os.environ["ROUTER_HOOK_TIMES"])


if os.environ.get("ROUTER_HOOK_DETAIL"):
    for _name, _detail in _DETAIL.items():
        _patch = _PATCHES.get(_name)
        _PATCHES[_name] = (lambda p, d: lambda m: (p(m) if p else None, d(m)))(_patch, _detail)

if os.environ.get("ROUTER_HOOK_TIMES"):
    sys.meta_path.insert(0, _Finder())
    gc.callbacks.append(_collection)
    signal.signal(signal.SIGUSR1, _dump)
