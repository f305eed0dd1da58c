"""Budget leases: a slice of a budget counter's headroom reserved in the state store in one step,
then drawn on by this instance's requests without a round trip each.

A lease is an ordinary reservation in the store (its own hold id, within the limit, atomic like
any other), so no number of instances can spend past a limit together. Requests draw on it in
memory, and their settlements move the lease's `drawn` figure; when the lease is done (too little
left for the next request, idle, its policy reloaded, the process stopping) and its requests have
settled, it goes back to the store as one settlement: what was granted turns into what was drawn.

The price: the store counts a lease's undrawn part as spent until it goes back, so another
instance may be refused up to one lease per instance before the limit; a process that is killed
leaves its leases counted (an over-count, never an under-count) until the window ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from router.state.protocol import Ask, limit_of

IDLE = 10.0  # seconds without a draw after which a lease goes back
# Seconds after its last draw when a lease goes back even with requests still open (their later
# settlements add the difference): a request whose end was never reported must not keep a whole
# lease counted until its window ends. Longer than any request lasts.
STALE = 600.0
EXACT_FOR = 10.0  # seconds a counter is reserved exactly after the store refused it a lease
# A lease must hold this many of the asks it is taken for: a lease that ran out keeps its undrawn
# rest (less than one ask) counted until its open requests settle, and a lease of a few asks would
# count a large share of its limit early that way. Smaller, and the counter is reserved exactly.
MIN_ASKS = 8


@dataclass
class Lease:
    hold: str  # the store's record of the grant
    key: str  # the counter it was added to (the window's current bucket)
    granted: float
    base: float  # the window's total the store reported just after the grant (the grant included)
    ttl: float
    last: float  # when it was last drawn on
    drawn: float = 0.0  # open requests at their reservation, settled ones at their real spend
    open: int = 0  # draws not settled yet
    closed: bool = False  # takes no more draws

    def total(self) -> float:
        """The window's total as this instance knows it: the store's at the grant, counting what was
        drawn instead of what was granted."""
        return self.base - self.granted + self.drawn

    def over(self, ask: Ask) -> bool:
        limit = limit_of(ask)
        return limit is not None and self.total() > limit


class Leases:
    """This instance's leases, safe to use from several threads."""

    def __init__(self) -> None:
        self._active: dict[str, Lease] = {}  # counter key -> the lease new draws go to
        self._held: dict[str, Lease] = {}  # hold id -> every lease not yet gone back
        self._exact_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, asks: list[Ask], now: float) -> dict[int, Lease]:
        """Draw each ask that its counter's lease still holds; {ask index: lease}."""
        taken = {}
        with self._lock:
            for i, ask in enumerate(asks):
                lease = self._active.get(ask.keys[-1])
                # A hair over the grant, as with limits: float sums must not leave the last ask out.
                if lease is not None and lease.drawn + ask.amount <= lease.granted * (1 + 1e-9):
                    lease.drawn += ask.amount
                    lease.open += 1
                    lease.last = now
                    taken[i] = lease
        return taken

    def give_back(self, taken: dict[int, Lease], asks: list[Ask]) -> list[Lease]:
        """Undo `take` for a request refused after all; the leases now due to go back."""
        return [done for i, lease in taken.items() if (done := self.settle(lease.hold, asks[i].amount, 0.0)[1])]

    def may_ask(self, key: str, now: float) -> bool:
        return self._exact_until.get(key, 0.0) <= now

    def refused(self, key: str, now: float) -> list[Lease]:
        """The store had no room for a lease on `key`: reserve it exactly for a while (near its limit,
        asking for a lease first would cost every request two round trips), and let the key's lease
        go back, its undrawn rest with it; the leases now due to go back."""
        with self._lock:
            self._exact_until[key] = now + EXACT_FOR
            lease = self._active.get(key)
            return self._close([lease] if lease is not None else [])

    def add(self, lease: Lease) -> list[Lease]:
        """A new lease for its key, drawn on once already; the leases now due to go back (the key's
        previous one, when nothing of it is open)."""
        with self._lock:
            previous = self._active.get(lease.key)
            self._active[lease.key] = self._held[lease.hold] = lease
            return self._close([previous] if previous is not None else [])

    def settle(self, hold: str, reserved: float, actual: float) -> tuple[bool, Lease | None]:
        """A request drawn on lease `hold` settled: (whether the lease is still here, the lease when
        it is now due to go back)."""
        with self._lock:
            lease = self._held.get(hold)
            if lease is None:
                return False, None
            lease.drawn = max(0.0, lease.drawn + actual - reserved)
            lease.open -= 1
            done = lease.closed and lease.open <= 0
            if done:
                del self._held[hold]
            return True, lease if done else None

    def expire(self, now: float) -> list[Lease]:
        """Close the leases idle for `IDLE` seconds; those now due to go back, with the ones whose
        open requests are `STALE`."""
        with self._lock:
            idle = [lease for lease in self._active.values() if now - lease.last >= IDLE]
            self._exact_until = {key: until for key, until in self._exact_until.items() if until > now}
            done = self._close(idle)
            stale = [h for h, lease in self._held.items() if lease.closed and now - lease.last >= STALE]
            return done + [self._held.pop(hold) for hold in stale]

    def close_all(self) -> list[Lease]:
        """Every lease, to go back now: open draws count at their reservation (the process is
        stopping, or the policy changed)."""
        with self._lock:
            gone = list(self._held.values())
            self._active.clear()
            self._held.clear()
            return gone

    def _close(self, leases: list[Lease]) -> list[Lease]:
        done = []
        for lease in leases:
            lease.closed = True
            if self._active.get(lease.key) is lease:
                del self._active[lease.key]
            if lease.open <= 0 and self._held.pop(lease.hold, None) is not None:
                done.append(lease)
        return done
