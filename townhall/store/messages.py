"""Agent mailboxes: ``tt:{town}:inbox:{id}`` and ``tt:{town}:urgent:{id}`` lists of message JSON."""

from __future__ import annotations

import enum
from typing import Iterable, Sequence

import msgspec
from redis.asyncio.client import Pipeline

from townhall.domain.events import TownEvent
from townhall.domain.messages import Message
from townhall.store.context import Lua, SubStore
from townhall.store.events import town_event_fields
from townhall.store.json_codec import encode_message, readdress_message, try_decode_message

PEEK_LIMIT = 100

# KEYS[1] urgent list, KEYS[2] inbox. Returns {urgent entries, inbox entries} and empties both.
INBOX_DRAIN = r"""
local urgent = redis.call('LRANGE', KEYS[1], 0, -1)
local regular = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
return {urgent, regular}
"""


class Placement(enum.Enum):
    BACK = "back"  # RPUSH to the regular inbox (normal/low priority)
    FRONT = "front"  # LPUSH to the regular inbox (high/urgent priority)
    URGENT = "urgent"  # LPUSH to the urgent inbox (explicit urgent send)


class InboxEntry(msgspec.Struct, frozen=True):
    """One stored entry: the raw JSON (kept verbatim when re-routing) and its parse, if known."""

    raw: str
    message: Message | None
    urgent: bool = False


class InboxLengths(msgspec.Struct, frozen=True):
    inbox: int
    urgent: int


def placement_for(message: Message, *, urgent: bool = False) -> Placement:
    """Upstream's rule: the urgent flag wins; else high/urgent priority to the front, others back."""
    if urgent:
        return Placement.URGENT
    return Placement.FRONT if message.priority.goes_to_front else Placement.BACK


def inbox_entry(raw: str, urgent: bool = False) -> InboxEntry:
    return InboxEntry(raw=raw, message=try_decode_message(raw), urgent=urgent)


class MessageStore(SubStore):
    async def send(self, message: Message, *, urgent: bool = False) -> Placement:
        """Put ``message`` in its recipient's mailbox and announce it (``message_sent``), in one
        transaction."""
        placement = placement_for(message, urgent=urgent)
        sent = TownEvent(event_type="message_sent", agent_id=message.to, from_agent_id=message.from_,
                         message_id=message.id, message=f"{message.type} message from {message.from_} to {message.to}")
        async with self._r.pipeline(transaction=True) as pipe:
            self._push(pipe, message.to, encode_message(message), placement)
            pipe.xadd(self._k.events, town_event_fields(sent), maxlen=self._ctx.event_retention, approximate=True)
            await pipe.execute()
        return placement

    async def push_raw(self, agent_id: str, raw: str, placement: Placement) -> None:
        async with self._r.pipeline(transaction=False) as pipe:
            self._push(pipe, agent_id, raw, placement)
            await pipe.execute()

    def _push(self, pipe: Pipeline, agent_id: str, raw: str, placement: Placement) -> None:
        if placement is Placement.URGENT:
            pipe.lpush(self._k.urgent(agent_id), raw)
        elif placement is Placement.FRONT:
            pipe.lpush(self._k.inbox(agent_id), raw)
        else:
            pipe.rpush(self._k.inbox(agent_id), raw)

    async def reroute(self, entry: InboxEntry, to: str) -> Placement:
        """Deliver an entry taken from another mailbox to ``to`` with a normal send (placement by
        priority), keeping fields we do not know."""
        raw = readdress_message(entry.raw, to)
        placement = placement_for(entry.message) if entry.message else Placement.BACK
        await self.push_raw(to, raw, placement)
        return placement

    async def requeue(self, agent_id: str, entries: Sequence[InboxEntry]) -> None:
        """Put entries a worker took back where they came from, ahead of newer mail, order kept."""
        urgent = [e.raw for e in entries if e.urgent]
        regular = [e.raw for e in entries if not e.urgent]
        async with self._r.pipeline(transaction=True) as pipe:
            if urgent:
                pipe.lpush(self._k.urgent(agent_id), *reversed(urgent))
            if regular:
                pipe.lpush(self._k.inbox(agent_id), *reversed(regular))
            await pipe.execute()

    async def peek(self, agent_id: str, limit: int = PEEK_LIMIT, *, urgent: bool = False) -> list[InboxEntry]:
        key = self._k.urgent(agent_id) if urgent else self._k.inbox(agent_id)
        return [inbox_entry(raw, urgent) for raw in await self._r.lrange(key, 0, limit - 1)]

    async def peek_many(self, agent_ids: Sequence[str], limit: int = PEEK_LIMIT) -> dict[str, list[InboxEntry]]:
        """First ``limit`` regular-inbox entries of each agent, one round trip."""
        replies = await self._ctx.read_each("lrange", [self._k.inbox(a) for a in agent_ids], 0, limit - 1)
        return {
            agent_id: [inbox_entry(raw) for raw in reply] if isinstance(reply, list) else []
            for agent_id, reply in zip(agent_ids, replies)
        }

    async def inbox_len(self, agent_id: str) -> int:
        return await self._r.llen(self._k.inbox(agent_id))

    async def urgent_len(self, agent_id: str) -> int:
        return await self._r.llen(self._k.urgent(agent_id))

    async def lengths(self, agent_ids: Iterable[str]) -> dict[str, InboxLengths]:
        """Inbox and urgent lengths of many agents in one round trip; unreadable lists count 0."""
        ids = list(agent_ids)
        replies = await self._ctx.read_each("llen", [key for a in ids for key in (self._k.inbox(a), self._k.urgent(a))])
        counts = [r if isinstance(r, int) else 0 for r in replies]
        return {a: InboxLengths(inbox=counts[2 * i], urgent=counts[2 * i + 1]) for i, a in enumerate(ids)}

    _drain = Lua(INBOX_DRAIN)
    async def drain(self, agent_id: str) -> list[InboxEntry]:
        """Take every entry of both lists at once (urgent first, each in list order)."""
        urgent, regular = await self._drain(
            keys=[self._k.urgent(agent_id), self._k.inbox(agent_id)], args=[]
        )
        return [inbox_entry(raw, True) for raw in urgent] + [inbox_entry(raw) for raw in regular]

    async def remove(self, agent_id: str, raws: Iterable[str], *, urgent: bool = False) -> int:
        """Remove specific entries (one occurrence each) without disturbing concurrent pushes."""
        key = self._k.urgent(agent_id) if urgent else self._k.inbox(agent_id)
        items = list(raws)
        if not items:
            return 0
        async with self._r.pipeline(transaction=True) as pipe:
            for raw in items:
                pipe.lrem(key, 1, raw)
            return sum(await pipe.execute())
