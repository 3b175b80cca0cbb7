"""The docket stream ``tt:{town}:docket:tasks`` and its consumer group ``workers`` (reference §4.1).

Every stream command townhall issues lives here. Entries carry the upstream producer fields
(``task_id, type, message, priority, from, to, timestamp``). Blocking reads take an explicit client:
the caller must pass one whose ``socket_timeout`` is ``None`` or longer than the block time (redis-py's
default of 5 s would otherwise abort a long ``BLOCK``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Awaitable, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from townhall.domain.agents import SUPERVISOR_ID
from townhall.domain.messages import Priority
from townhall.domain.timestamps import format_json_time, utc_now
from townhall.keys import DOCKET_GROUP
from townhall.store.context import SubStore

T = TypeVar("T")

SHARED_RECIPIENT = DOCKET_GROUP


class DocketEntry(msgspec.Struct, frozen=True):
    """One stream entry: its id and the task it announces (``task_id`` may be empty if malformed)."""

    entry_id: str
    task_id: str
    fields: dict[str, str]
    #: Set on entries taken over from another consumer (:meth:`DocketStore.claim_idle`).
    previous_owner: str | None = None


class DocketDepth(msgspec.Struct, frozen=True):
    """``unread``: not yet delivered to any consumer; ``pending``: delivered and not acknowledged."""

    unread: int
    pending: int


def _is_missing(exc: ResponseError) -> bool:
    text = str(exc)
    return "NOGROUP" in text or "no such key" in text


async def _unless_missing(reply: Awaitable[T], missing: T) -> T:
    """A stream or group command whose stream or group does not exist (yet) answers ``missing``."""
    try:
        return await reply
    except ResponseError as exc:
        if _is_missing(exc):
            return missing
        raise


def _entries(reply: object) -> list[DocketEntry]:
    """Parse ``[[stream, [(id, fields)...]]]`` (XREADGROUP) or ``[(id, fields)...]``."""
    found: list[DocketEntry] = []
    if not reply:
        return found
    rows = reply
    if isinstance(reply, list) and reply and isinstance(reply[0], (list, tuple)) and len(reply[0]) == 2 \
            and isinstance(reply[0][1], list):
        rows = [row for _, stream_rows in reply for row in stream_rows]
    for entry_id, fields in rows:  # type: ignore[union-attr]
        # A pending entry that was deleted from the stream comes back with no fields.
        values = dict(fields or {})
        found.append(DocketEntry(entry_id=entry_id, task_id=values.get("task_id", ""), fields=values))
    return found


class DocketStore(SubStore):
    @property
    def key(self) -> str:
        return self._k.docket

    async def ensure_group(self) -> None:
        """Create the stream (MKSTREAM) and the ``workers`` group; an existing group is fine.

        Upstream creates the group at ``$``; we create it at ``0``, which is the same for a new stream
        but, when the stream already holds entries (written before the group existed, or the group
        was deleted), keeps them deliverable instead of silently skipping them."""
        try:
            await self._r.xgroup_create(self._k.docket, DOCKET_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def add(
        self,
        task_id: str,
        description: str,
        *,
        priority: Priority = Priority.NORMAL,
        sender: str = SUPERVISOR_ID,
        to: str = SHARED_RECIPIENT,
        at: datetime | None = None,
    ) -> str:
        """``XADD *`` with the upstream producer fields; returns the entry id."""
        return await self._r.xadd(
            self._k.docket,
            {
                "task_id": task_id,
                "type": "task_assign",
                "message": description,
                "priority": priority.value,
                "from": sender,
                "to": to,
                "timestamp": format_json_time(at or utc_now()),
            },
        )

    # ---- consumers ------------------------------------------------------------------------------
    async def read_new(self, consumer: str, *, block_ms: int | None, client: aioredis.Redis | None = None,
                       count: int = 1) -> list[DocketEntry]:
        """Entries never delivered to anyone (``>``), now owned by ``consumer``. ``block_ms=None``
        does not block. A missing group is created and the read retried once."""
        redis = client or self._r
        for attempt in (0, 1):
            try:
                reply = await redis.xreadgroup(
                    DOCKET_GROUP, consumer, {self._k.docket: ">"}, count=count, block=block_ms
                )
            except ResponseError as exc:
                if attempt == 0 and _is_missing(exc):
                    await self.ensure_group()
                    continue
                raise
            return _entries(reply)
        return []

    async def read_own(self, consumer: str, count: int = 10) -> list[DocketEntry]:
        """What ``consumer`` was delivered and has not acknowledged (its PEL), oldest first."""
        reply = await _unless_missing(
            self._r.xreadgroup(DOCKET_GROUP, consumer, {self._k.docket: "0"}, count=count), []
        )
        return _entries(reply)

    async def ack(self, entry_id: str) -> int:
        """Acknowledge (and so finish) one entry; ``XACK`` only after its task finished."""
        return int(await self._r.xack(self._k.docket, DOCKET_GROUP, entry_id))

    async def claim_idle(self, consumer: str, min_idle_ms: int, count: int = 1) -> list[DocketEntry]:
        """Take over up to ``count`` entries idle for at least ``min_idle_ms`` (their consumer is dead:
        live ones touch theirs) for ``consumer``. ``XPENDING … IDLE`` + ``XCLAIM`` rather than
        ``XAUTOCLAIM``, because the taker must know who held the entry (``previous_owner``); ``XCLAIM``
        re-checks the idle time, so of two rescuers only one gets an entry."""
        rows = await _unless_missing(
            self._r.xpending_range(self._k.docket, DOCKET_GROUP, min="-", max="+", count=count, idle=min_idle_ms),
            [],
        )
        claimed: list[DocketEntry] = []
        for row in rows:
            if row["consumer"] == consumer:
                continue
            reply = await self._r.xclaim(
                self._k.docket, DOCKET_GROUP, consumer, min_idle_time=min_idle_ms, message_ids=[row["message_id"]]
            )
            for entry in _entries(reply):
                claimed.append(msgspec.structs.replace(entry, previous_owner=row["consumer"]))
            if not reply and not await self._r.xrange(self._k.docket, row["message_id"], row["message_id"]):
                # Deleted from the stream while pending: nothing left to deliver, so retire it.
                await self._r.xack(self._k.docket, DOCKET_GROUP, row["message_id"])
        return claimed

    async def touch(self, consumer: str, entry_id: str) -> bool:
        """Reset an owned entry's idle time (``XCLAIM … JUSTID`` to itself) during a long run, so the
        visibility timeout only takes work from dead consumers. ``False`` if it is not pending."""
        ids = await _unless_missing(
            self._r.xclaim(self._k.docket, DOCKET_GROUP, consumer, min_idle_time=0, message_ids=[entry_id],
                           justid=True),
            [],
        )
        return bool(ids)

    async def owner(self, entry_id: str) -> str | None:
        """The consumer an entry is pending with, or ``None`` if acknowledged/unknown."""
        rows = await _unless_missing(
            self._r.xpending_range(self._k.docket, DOCKET_GROUP, min=entry_id, max=entry_id, count=1), []
        )
        return rows[0]["consumer"] if rows else None

    async def owned(self, consumer: str, count: int = 100) -> list[DocketEntry]:
        """Entries pending with ``consumer`` (with their fields; deleted ones are retired)."""
        rows = await _unless_missing(
            self._r.xpending_range(self._k.docket, DOCKET_GROUP, min="-", max="+", count=count,
                                   consumername=consumer),
            [],
        )
        found: list[DocketEntry] = []
        for row in rows:
            entry_id = row["message_id"]
            entries = _entries(await self._r.xrange(self._k.docket, entry_id, entry_id))
            if entries:
                found += entries
            else:
                await self._r.xack(self._k.docket, DOCKET_GROUP, entry_id)
        return found

    async def forget_consumer(self, consumer: str) -> int:
        """Delete a consumer that has nothing pending (pruned agents); returns entries it held."""
        return int(await _unless_missing(self._r.xgroup_delconsumer(self._k.docket, DOCKET_GROUP, consumer), 0))

    # ---- measuring and trimming -----------------------------------------------------------------
    async def length(self) -> int:
        return int(await self._r.xlen(self._k.docket))

    async def pending_count(self) -> int:
        """First element of the ``XPENDING`` summary; a missing group or stream is 0."""
        summary = await _unless_missing(self._r.xpending(self._k.docket, DOCKET_GROUP), {})
        return int(summary.get("pending") or 0)

    async def unread(self) -> int:
        """The group's ``lag``; ``XLEN`` when the group is absent or the lag unknown (over-count rather
        than report zero, as upstream does). A missing stream is 0."""
        try:
            groups = await self._r.xinfo_groups(self._k.docket)
        except ResponseError as exc:
            if _is_missing(exc):
                return await self.length()
            raise
        for group in groups:
            if group.get("name") == DOCKET_GROUP:
                lag = group.get("lag")
                if isinstance(lag, int) or (isinstance(lag, str) and lag.isdigit()):
                    return int(lag)
                break
        return await self.length()

    async def depth(self) -> DocketDepth:
        return DocketDepth(unread=await self.unread(), pending=await self.pending_count())

    async def trim_delivered(self) -> int:
        """``XTRIM MINID`` just below the oldest entry that is still needed: the oldest pending
        (unacknowledged) one, or else the first not yet delivered. Never drops unacked or unread
        entries. Returns the number of entries removed."""
        try:
            summary = await self._r.xpending(self._k.docket, DOCKET_GROUP)
            groups = await self._r.xinfo_groups(self._k.docket)
        except ResponseError as exc:
            if _is_missing(exc):
                return 0
            raise
        group = next((g for g in groups if g.get("name") == DOCKET_GROUP), None)
        if group is None:
            return 0
        if summary.get("pending"):
            keep_from = summary["min"]
        else:
            last = group.get("last-delivered-id") or "0-0"
            keep_from = _next_id(last)
        # Only other groups' readers could need older entries; townhall has just the one group.
        if len(groups) > 1:
            return 0
        return int(await self._r.xtrim(self._k.docket, minid=keep_from, approximate=False))


def _next_id(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"
