"""Hot reload: keep the newest valid version of a policy file, and the last good one when an edit breaks it."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from router.core.decide import CompiledPolicy
from router.core.semantic import Embedder
from router.errors import PolicyError
from router.policy.loader import Groups, load_policy, referenced_files

log = logging.getLogger("router")


class PolicyFile:
    """The compiled policy of one file; `watch()` polls the file and swaps in valid changes.

    A reader takes `current` once per request, so a swap never mixes two policies in one decision.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        interval: float = 0.5,
        groups: Groups | None = None,
        embedder: Embedder | None = None,
    ):
        self.path = Path(path)
        self.interval = interval
        self.groups = groups  # the model groups every target must name (the proxy's model_list)
        self.embedder = embedder  # what routes' examples are compared with; None: they never match
        self.last_error: PolicyError | None = None
        self._files: tuple[Path, ...] = ()  # what the policy reads besides itself, watched too
        self._stamp = self._read_stamp()
        self._current = CompiledPolicy(load_policy(self.path, groups=groups), embedder)
        self._watch_files()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> CompiledPolicy:
        return self._current

    def refresh(self) -> bool:
        """Reload when the file changed since the last look; True when a new policy took effect."""
        stamp = self._read_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            log.warning("policy file %s is missing; the last good policy keeps serving", self.path)
            return False
        try:
            compiled = CompiledPolicy(load_policy(self.path, groups=self.groups), self.embedder)
        except PolicyError as exc:
            self.last_error = exc
            log.error("policy %s was not reloaded; the last good policy keeps serving. %s", self.path, exc)
            return False
        self._current, self.last_error = compiled, None
        self._watch_files()
        log.info(
            "policy %s reloaded: %d routes, %d models", self.path, len(compiled.routes), len(compiled.policy.models)
        )
        return True

    def use(self, embedder: Embedder | None) -> None:
        """Compare routes' examples with this embedder from now on (the runtime's shared one, loaded
        at start-up): the current policy is compiled again with it, and so is every reload."""
        self.embedder = embedder
        self._current = CompiledPolicy(self._current.policy, embedder)

    def watch(self) -> None:
        """Start polling in a daemon thread (once); `close()` stops it."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="router-policy-watch", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # the watcher must outlive any one bad read
                log.exception("policy watcher: unexpected error reading %s", self.path)

    def _watch_files(self) -> None:
        """Watch the files the current policy read (its example files, its classifier) as well."""
        self._files = referenced_files(self._current.policy, self.path)
        if self._stamp is not None:
            self._stamp = (self._stamp[0], tuple(_stamp_of(f) for f in self._files))

    def _read_stamp(self) -> tuple[tuple[int, int], tuple] | None:
        own = _stamp_of(self.path)
        return None if own is None else (own, tuple(_stamp_of(f) for f in self._files))


def _stamp_of(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
