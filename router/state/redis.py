"""Redis: state shared by every proxy instance. When Redis is unreachable, calls fail fast with
StoreUnavailable for a short while instead of each paying a timeout, and one line is logged per
outage, not one per request; the first call after Redis returns restores service."""

from __future__ import annotations

import logging
import time

import redis

from router.state.protocol import Ask, Reserved, Settlement, StoreUnavailable, Tallies, hold_key, hold_ttl, limit_of

log = logging.getLogger("router")
_FAILURES = (redis.ConnectionError, redis.TimeoutError, OSError)
# All of a request's reservations, checked and added in one step on the server: concurrent requests
# from any number of instances see each other's amounts. ARGV: the hold's ttl in ms ('' for no hold,
# whose key is then the last of KEYS), the number of asks, then per ask its key count, amount, limit
# ('' for none), ttl in ms and soft flag. Numbers go back as strings (Lua would cut them to integers).
_RESERVE = """
local hold_ttl, count, a, k = ARGV[1], tonumber(ARGV[2]), 3, 1
local asks, refused = {}, 0
for i = 1, count do
  local nkeys, amount, limit = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2]
  local total = 0
  for j = k, k + nkeys - 1 do total = total + tonumber(redis.call('GET', KEYS[j]) or '0') end
  local over = limit ~= '' and total + amount > tonumber(limit)
  if over and ARGV[a + 4] == '0' and refused == 0 then refused = i end
  asks[i] = {KEYS[k + nkeys - 1], ARGV[a + 1], ARGV[a + 3], total, over}
  a, k = a + 5, k + nkeys
end
if refused == 0 and hold_ttl ~= '' then redis.call('SET', KEYS[#KEYS], '1', 'PX', hold_ttl) end
local out = {tostring(refused)}
for i = 1, count do
  local ask = asks[i]
  if refused == 0 then
    redis.call('INCRBYFLOAT', ask[1], ask[2])
    redis.call('PEXPIRE', ask[1], ask[3])
    ask[4] = ask[4] + tonumber(ask[2])
  end
  table.insert(out, tostring(ask[4]))
  table.insert(out, ask[5] and '1' or '0')
end
return out
"""
# A reservation turned into real spend: KEYS[1] is the hold's record, the rest its counters; ARGV per
# counter: the actual amount, the reserved amount negated, ttl in ms. Without the record (a store that
# lost its data, or nothing reserved) only the actual amount is added. No counter goes below 0.
_SETTLE = """
local held = redis.call('DEL', KEYS[1]) == 1
for i = 2, #KEYS do
  local a = (i - 2) * 3 + 1
  local value = tonumber(redis.call('INCRBYFLOAT', KEYS[i], ARGV[a]))
  if held then value = tonumber(redis.call('INCRBYFLOAT', KEYS[i], ARGV[a + 1])) end
  if value < 0 then redis.call('SET', KEYS[i], '0') end
  redis.call('PEXPIRE', KEYS[i], ARGV[a + 2])
end
return 1
"""


class RedisStore:
    def __init__(self, url: str, retry_after: float = 1.0):
        self.url = url
        self.retry_after = retry_after
        self._client = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=1.0)
        self._down_until = 0.0
        self._down = False
        self._failed_at = 0.0  # when a call last found Redis unreachable (monotonic)
        self._reserve_script = self._client.register_script(_RESERVE)
        self._settle_script = self._client.register_script(_SETTLE)

    def _call(self, op):
        if self._down and time.monotonic() < self._down_until:
            raise StoreUnavailable(f"redis at {self.url} is down")
        began = time.monotonic()
        try:
            result = op(self._client)
        except _FAILURES as exc:
            self._failed_at = time.monotonic()
            self._down_until = self._failed_at + self.retry_after
            if not self._down:
                self._down = True
                log.warning("redis at %s is unreachable (%s); shared state is skipped until it returns", self.url, exc)
            raise StoreUnavailable(str(exc)) from None
        # Calls overlap: one answered just before another found Redis down says nothing about now.
        if self._down and began > self._failed_at:
            self._down = False
            log.warning("redis at %s is reachable again", self.url)
        return result

    def get(self, key: str) -> bytes | None:
        return self._call(lambda r: r.get(key))

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._call(lambda r: r.set(key, value, px=_ms(ttl)))

    def set_many(self, items: list[tuple[str, bytes, float]]) -> None:
        def run(r):
            pipe = r.pipeline(transaction=False)
            for key, value, ttl in items:
                pipe.set(key, value, px=_ms(ttl))
            pipe.execute()

        if items:
            self._call(run)

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        return self._call(lambda r: r.mget(keys)) if keys else []

    def tally(self, counts: Tallies, ttl: float) -> None:
        def op(r):
            pipe = r.pipeline(transaction=False)
            _tally(pipe, counts, ttl)
            pipe.execute()

        if counts:
            self._call(op)

    def tallies(self, keys: list[str]) -> list[dict[str, float]]:
        def op(r):
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.hgetall(key)
            return pipe.execute()

        rows = self._call(op) if keys else []
        return [{field.decode(): float(value) for field, value in row.items()} for row in rows]

    def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        def op(r):
            pipe = r.pipeline()
            pipe.incrbyfloat(key, amount)
            if ttl is not None:
                pipe.pexpire(key, _ms(ttl))
            return pipe.execute()[0]

        return float(self._call(op))

    def reserve(self, asks: list[Ask], hold: str | None = None) -> Reserved:
        keys = [key for ask in asks for key in ask.keys]
        args: list = ["", len(asks)]
        if hold is not None:
            keys.append(hold_key(hold))
            args[0] = _ms(hold_ttl(asks))
        for ask in asks:
            limit = "" if ask.limit is None else repr(limit_of(ask))
            args += [len(ask.keys), repr(ask.amount), limit, _ms(ask.ttl), int(ask.soft)]
        reply = self._call(lambda r: self._reserve_script(keys=keys, args=args, client=r))
        refused = int(reply[0])
        return Reserved(
            refused - 1 if refused else None, [float(v) for v in reply[1::2]], [v == b"1" for v in reply[2::2]]
        )

    def settle(self, hold: str | None, changes: list[Settlement]) -> None:
        self.settle_many([(hold, changes)])

    def settle_many(self, batch: list[tuple[str | None, list[Settlement]]]) -> None:
        def op(r):
            pipe = r.pipeline(transaction=True)  # MULTI/EXEC: a batch is applied whole or not at all
            for hold, changes in batch:
                keys = [hold_key(hold) if hold is not None else hold_key("")] + [c.key for c in changes]
                args = [item for c in changes for item in (repr(c.actual), repr(-c.reserved), _ms(c.ttl))]
                self._settle_script(keys=keys, args=args, client=pipe)
            pipe.execute()

        self._call(op)

    def append(self, log_name: str, payload: bytes, max_len: int) -> str:
        return self.append_many(log_name, [payload], max_len)[0]

    def append_many(
        self, log_name: str, payloads: list[bytes], max_len: int, counts: Tallies | None = None, ttl: float = 0.0
    ) -> list[str]:
        def op(r):
            pipe = r.pipeline(transaction=True)
            for payload in payloads:
                pipe.xadd(log_name, {"p": payload}, maxlen=max_len, approximate=True)
            _tally(pipe, counts or {}, ttl)
            return pipe.execute()[: len(payloads)]

        return [entry_id.decode() for entry_id in self._call(op)]

    def read(self, log_name: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        start = f"({after}" if after else "-"
        rows = self._call(lambda r: r.xrange(log_name, min=start, max="+", count=limit))
        return [(entry_id.decode(), fields[b"p"]) for entry_id, fields in rows]

    def close(self) -> None:
        self._client.close()


def _tally(pipe, counts: Tallies, ttl: float) -> None:
    for key, fields in counts.items():
        for field, amount in fields.items():
            pipe.hincrbyfloat(key, field, amount)
        pipe.pexpire(key, _ms(ttl))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
