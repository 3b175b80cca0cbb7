"""What every sub-store shares: the client, the key names, and small helpers for reads and scripts."""

from __future__ import annotations

import enum
import logging
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence, TypeVar, overload

import msgspec
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from townhall.domain_errors import NotReplicated
from townhall.keys import TownKeys
from townhall.store.codec import HashWrite

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# Lua: is `state` in the comma-separated `csv`? '' allows every state (see :func:`csv`).
LUA_ALLOWED = r"""
local function allowed(csv, state)
  if csv == '' then return true end
  for s in string.gmatch(csv, '[^,]+') do
    if s == state then return true end
  end
  return false
end
"""

#: How many entries the town event stream keeps (``XADD … MAXLEN ~``) unless the config says otherwise.
DEFAULT_EVENT_RETENTION = 10_000
#: The line of a script that appends events where the retention is set; :meth:`StoreContext.script` puts
#: the town's number in (a script registered otherwise keeps the default).
EVENT_RETENTION_MARK = f"local EVENTS_MAXLEN = '{DEFAULT_EVENT_RETENTION}'\n"

# KEYS[1] a lock or liveness key. ARGV: owner token. Deletes the key only if this owner still holds it.
RELEASE_IF_HELD = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: The reads :meth:`StoreContext.read_each` runs over many keys.
READ_EACH = frozenset({"get", "hgetall", "hmget", "llen", "lrange", "exists"})
# ARGV: command, its arguments after the key. Runs it on every key; a failed read is false (a nil
# would cut the array short).
READ_EACH_SCRIPT = r"""
local out = {}
for i, key in ipairs(KEYS) do
  local r = redis.pcall(ARGV[1], key, unpack(ARGV, 2))
  if type(r) == 'table' and r.err then r = false end
  out[i] = r
end
return out
"""


class Durability(msgspec.Struct, frozen=True):
    """``[redis] wait_replicas`` / ``wait_timeout_ms``: how many replicas must have a write that has to
    survive a failover before it is acknowledged (0: the primary's word is enough)."""

    replicas: int = 0
    timeout_ms: int = 1000


class StoreContext:
    def __init__(self, redis: aioredis.Redis, keys: TownKeys, durability: Durability | None = None,
                 event_retention: int = DEFAULT_EVENT_RETENTION) -> None:
        self.redis = redis
        self.keys = keys
        self.durability = durability or Durability()
        self.event_retention = event_retention
        self._release_if_held = redis.register_script(RELEASE_IF_HELD)
        self._read_each = redis.register_script(READ_EACH_SCRIPT)

    async def durable(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a write script that must survive a failover (a task created, assigned or finished). With
        ``wait_replicas`` the script and a ``WAIT`` go in one pipeline: WAIT counts the replicas that
        have this connection's writes, so it must run on the connection that wrote. Too few in time:
        :class:`NotReplicated` (the write is done on the primary, but not acknowledged)."""
        wanted = self.durability.replicas
        if not wanted:
            return await script(keys=keys, args=args)
        async with self.redis.pipeline(transaction=False) as pipe:
            await script(keys=keys, args=args, client=pipe)
            pipe.wait(wanted, self.durability.timeout_ms)
            result, confirmed = await pipe.execute()
        if confirmed < wanted:
            raise NotReplicated(wanted, confirmed, self.durability.timeout_ms)
        return result

    def script(self, text: str) -> AsyncScript:
        """Register a Lua script; one that appends town events gets this town's retention baked in
        (the same number for every call, so it is part of the script rather than of each call's
        arguments)."""
        retention = f"local EVENTS_MAXLEN = '{self.event_retention}'\n"
        return self.redis.register_script(text.replace(EVENT_RETENTION_MARK, retention))

    async def release_if_held(self, key: str, token: str) -> None:
        await self._release_if_held(keys=[key], args=[token])

    async def delete_record(self, record: str, owned: Sequence[str], *, member: str, indexes: Sequence[str]) -> bool:
        """Delete a record, the keys it owns and its id ``member`` from the index sets, in one
        transaction. ``True`` if the record existed."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(record)
            pipe.delete(*owned)
            for index in indexes:
                pipe.srem(index, member)
            replies = await pipe.execute()
        return bool(replies[0])

    async def read_or_none(self, read: Awaitable[T], what: str) -> T | None:
        """One read of a key another tool may have written as another type (``WRONGTYPE``): the
        record is logged as unreadable and reads as absent."""
        try:
            return await read
        except ResponseError as exc:
            log.warning("%s unreadable: %s", what, exc)
            return None

    async def read_each(self, command: str, keys: Sequence[str], *args: Any) -> list[Any]:
        """``command key *args`` for each key in one round trip (one script: a pipeline of N commands
        costs N times redis-py's packing and parsing). A failed read (a key of another type) is
        ``None`` in the list, so callers keep the others. ``command`` is one of :data:`READ_EACH`."""
        if not keys:
            return []
        if command not in READ_EACH:
            raise ValueError(f"read_each: {command} is not a read it knows")
        replies: list[Any] = await self._read_each(keys=list(keys), args=[command, *args])
        if command == "hgetall":
            return [dict(zip(r[::2], r[1::2])) if isinstance(r, list) else None for r in replies]
        return replies


    async def hash_record(self, key: str, decode: Callable[[Mapping[str, str]], R | None], what: str) -> R | None:
        """One record hash, decoded; missing or unreadable (logged as ``what``) reads as ``None``."""
        raw = await self.read_or_none(self.redis.hgetall(key), what)
        return decode(raw) if raw else None

    async def hash_records(
        self, keys: Sequence[str], decode: Callable[[Mapping[str, str]], R | None]
    ) -> list[R | None]:
        """Record hashes in the order asked, ``None`` where missing or unreadable; one round trip."""
        return [decode(r) if isinstance(r, dict) else None for r in await self.read_each("hgetall", keys)]


class Lua:
    """A Lua script a sub-store calls, declared as a class attribute beside its caller::

        class BacklogStore(SubStore):
            _discard = Lua(BACKLOG_DISCARD)

    On an instance the attribute is the script registered with that store's client (registered on
    first use, then kept on the instance), so a sub-store needs no ``__init__`` just to list them."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, store: None, owner: type) -> Lua: ...
    @overload
    def __get__(self, store: SubStore, owner: type) -> AsyncScript: ...
    def __get__(self, store: SubStore | None, owner: type) -> Lua | AsyncScript:
        if store is None:
            return self
        script = store._ctx.script(self.source)  # with the town's event retention filled in
        # A non-data descriptor: the instance attribute now shadows it, so this runs once per store.
        store.__dict__[self.name] = script
        return script


class SubStore:
    """Base of the per-record stores. A subclass declares the Lua scripts it calls as :class:`Lua`
    class attributes, so each script sits beside its caller."""

    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._r = ctx.redis
        self._k = ctx.keys


def lua_set(members: Iterable[enum.Enum]) -> str:
    """A Lua table literal ``{a = true, …}`` of enum values, so scripts test membership in the very
    sets :mod:`townhall.domain` defines. Sorted: the script text (and so its SHA) must not depend on
    set iteration order, which differs between processes."""
    return "{" + ", ".join(f"{value} = true" for value in sorted(m.value for m in members)) + "}"


def patch_values(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields of a patch struct that were set (``UNSET`` ones are left alone)."""
    return {
        name: value
        for name in patch.__struct_fields__
        if (value := getattr(patch, name)) is not msgspec.UNSET
    }


def write_args(write: HashWrite) -> list[str]:
    """``nset, f1, v1, …, deleted…`` as the write scripts take them."""
    args: list[str] = [str(len(write.set))]
    for name, value in write.set.items():
        args += [name, value]
    args += list(write.delete)
    return args


def csv(states: Iterable[Any] | None) -> str:
    if states is None:
        return ""
    values = [s.value if hasattr(s, "value") else str(s) for s in states]
    # An empty allowed set must reject everything, which '' would not: use a value no state has.
    return ",".join(values) if values else "\x00"
