"""Redis: state shared by every proxy instance. When Redis is unreachable, calls fail fast with
StoreUnavailable for a short while instead of each paying a timeout, and one line is logged per
outage, not one per request; the first call after Redis returns restores service."""

from __future__ import annotations

import logging
import time

import redis

from router.state.protocol import StoreUnavailable

log = logging.getLogger("router")
_FAILURES = (redis.ConnectionError, redis.TimeoutError, OSError)
# Check-and-add in one step on the server: concurrent reservations from any number of instances
# see each other's amounts. Totals go back as strings (Lua numbers would be cut to integers).
_RESERVE = """
local total = 0
for _, key in ipairs(KEYS) do total = total + tonumber(redis.call('GET', key) or '0') end
local amount = tonumber(ARGV[1])
if ARGV[2] ~= '' and total + amount > tonumber(ARGV[2]) then return {0, tostring(total)} end
redis.call('INCRBYFLOAT', KEYS[#KEYS], ARGV[1])
redis.call('PEXPIRE', KEYS[#KEYS], ARGV[3])
return {1, tostring(total + amount)}
"""


class RedisStore:
    def __init__(self, url: str, retry_after: float = 1.0):
        self.url = url
        self.retry_after = retry_after
        self._client = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=1.0)
        self._down_until = 0.0
        self._down = False
        self._reserve_script = self._client.register_script(_RESERVE)

    def _call(self, op):
        if self._down and time.monotonic() < self._down_until:
            raise StoreUnavailable(f"redis at {self.url} is down")
        try:
            result = op(self._client)
        except _FAILURES as exc:
            self._down_until = time.monotonic() + self.retry_after
            if not self._down:
                self._down = True
                log.warning("redis at %s is unreachable (%s); shared state is skipped until it returns", self.url, exc)
            raise StoreUnavailable(str(exc)) from None
        if self._down:
            self._down = False
            log.warning("redis at %s is reachable again", self.url)
        return result

    def get(self, key: str) -> bytes | None:
        return self._call(lambda r: r.get(key))

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._call(lambda r: r.set(key, value, px=max(1, int(ttl * 1000))))

    def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        def op(r):
            pipe = r.pipeline()
            pipe.incrbyfloat(key, amount)
            if ttl is not None:
                pipe.pexpire(key, max(1, int(ttl * 1000)))
            return pipe.execute()[0]

        return float(self._call(op))

    def reserve(self, keys: list[str], amount: float, limit: float | None, ttl: float) -> tuple[bool, float]:
        args = [repr(amount), "" if limit is None else repr(limit), max(1, int(ttl * 1000))]
        ok, total = self._call(lambda r: self._reserve_script(keys=keys, args=args, client=r))
        return bool(ok), float(total)

    def append(self, log_name: str, payload: bytes, max_len: int) -> str:
        entry_id = self._call(lambda r: r.xadd(log_name, {"p": payload}, maxlen=max_len, approximate=True))
        return entry_id.decode()

    def read(self, log_name: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        start = f"({after}" if after else "-"
        rows = self._call(lambda r: r.xrange(log_name, min=start, max="+", count=limit))
        return [(entry_id.decode(), fields[b"p"]) for entry_id, fields in rows]

    def close(self) -> None:
        self._client.close()
