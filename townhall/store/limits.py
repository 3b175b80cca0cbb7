"""Rate-limit token buckets shared by every townhall process and replica of a town
(``tt:{town}:ratelimit:{kind}:{who}`` hashes, one per caller and bucket kind).

One script call per request: it refills the bucket from Redis's own clock (``TIME``, so replicas whose
clocks disagree still share one budget), takes a token when there is one, and sets a TTL of the time
the bucket needs to fill up again, after which a missing key means exactly what the key said: a full
bucket. Nothing accumulates, and a caller cycling identities costs one short-lived key each.
"""

from __future__ import annotations

import msgspec

from townhall.store.context import Lua, SubStore

# KEYS[1] bucket hash, KEYS[2] (optional) a guard bucket. ARGV: capacity, refill per second, then the
# guard's capacity and refill. Takes a token of KEYS[1] if it holds one, unless the guard bucket holds
# less than one (the guard is only read). Returns {taken (1/0), ms until the bucket that refused holds
# a token again (else: until KEYS[1] does; 0 if it still holds one)}. Numbers are returned as integers:
# Redis truncates a Lua number reply, hence whole ms.
BUCKET_TAKE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000

local function refilled(key, capacity, rate)
  local saved = redis.call('HMGET', key, 'tokens', 'at')
  local tokens, at = tonumber(saved[1]), tonumber(saved[2])
  if tokens == nil or at == nil then return capacity end
  if now > at then return math.min(capacity, tokens + (now - at) * rate) end
  return tokens
end

local function wait_ms(tokens, rate)
  if tokens >= 1 then return 0 end
  return math.ceil((1 - tokens) / rate * 1000)
end

if KEYS[2] then
  local guard_rate = tonumber(ARGV[4])
  local guard = refilled(KEYS[2], tonumber(ARGV[3]), guard_rate)
  if guard < 1 then return {0, wait_ms(guard, guard_rate)} end
end
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens = refilled(KEYS[1], capacity, rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
-- Full again after this long: then a missing key means the same as the key.
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {taken, wait_ms(tokens, rate)}
"""


class Bucket(msgspec.Struct, frozen=True):
    """One caller's bucket of one kind: ``kind`` (``reads``, ``writes``, ``auth``), ``who``
    (``principal:{id}``, ``ip:{address}``), and its size."""

    kind: str
    who: str
    capacity: int
    per_minute: int


class BucketAnswer(msgspec.Struct, frozen=True):
    #: Whether a token was taken.
    taken: bool
    #: Seconds until the bucket that refused holds a whole token again; after a take, until the
    #: bucket does (0 while it still holds one).
    wait_secs: float


class RateLimitStore(SubStore):
    """The town's shared buckets."""

    _take = Lua(BUCKET_TAKE)

    async def take(self, bucket: Bucket, *, unless_empty: Bucket | None = None) -> BucketAnswer:
        """Take one token of ``bucket`` if it holds one and ``unless_empty`` (only read) is not empty;
        one round trip."""
        keys = [self._k.rate_bucket(bucket.kind, bucket.who)]
        args: list[float] = [bucket.capacity, bucket.per_minute / 60]
        if unless_empty is not None:
            keys.append(self._k.rate_bucket(unless_empty.kind, unless_empty.who))
            args += [unless_empty.capacity, unless_empty.per_minute / 60]
        taken, wait_ms = await self._take(keys=keys, args=args)
        return BucketAnswer(taken=bool(int(taken)), wait_secs=int(wait_ms) / 1000)
