"""The shared backlog list ``tt:{town}:backlog`` of task ids (FIFO) and its atomic claim operations."""

from __future__ import annotations

from typing import Callable

from townhall.domain import Message, format_hash_time, is_uuid, utc_now
from townhall.store.context import StoreContext

_NOT_IN_BACKLOG, _CLAIMED, _DROPPED = 0, 1, 2


class BacklogStore:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._r = ctx.redis
        self._k = ctx.keys

    async def push(self, task_id: str) -> None:
        await self._r.rpush(self._k.backlog, task_id)

    async def list(self) -> list[str]:
        """Task ids in FIFO order; entries that are not UUIDs are skipped, as upstream does."""
        return [t for t in await self._r.lrange(self._k.backlog, 0, -1) if is_uuid(t)]

    async def length(self) -> int:
        return await self._r.llen(self._k.backlog)

    async def remove(self, task_id: str) -> bool:
        return bool(await self._r.lrem(self._k.backlog, 1, task_id))

    async def discard(self, task_id: str) -> bool:
        """Remove from the backlog and, only if it was there, delete the task record (one step)."""
        return bool(
            await self._ctx.scripts.backlog_discard(
                keys=self._ctx.task_keys(task_id, self._k.backlog), args=[task_id]
            )
        )

    async def claim(self, task_id: str, agent_id: str, message: Message) -> bool:
        """Take ``task_id`` out of the backlog for ``agent_id``: the task (if it has a record) becomes
        ``assigned`` to the agent and ``message`` (its task_assign) is appended to the agent's inbox —
        all or nothing. ``False`` if the task was not in the backlog (someone else got it)."""
        code = await self._claim(task_id, agent_id, message.to_json(), require_record=False)
        return code == _CLAIMED

    async def assign_all(self, agent_id: str, make_message: Callable[[str], Message]) -> list[str]:
        """Claim every backlog task for ``agent_id`` in FIFO order; returns the ids assigned. Each task
        moves in its own atomic step, so concurrent callers never both get a task. Ids without a task
        record are removed and dropped (upstream behaviour)."""
        assigned: list[str] = []
        while True:
            head = await self._r.lindex(self._k.backlog, 0)
            if head is None:
                return assigned
            code = await self._claim(head, agent_id, make_message(head).to_json(), require_record=True)
            if code == _CLAIMED:
                assigned.append(head)

    async def _claim(self, task_id: str, agent_id: str, message_json: str, *, require_record: bool) -> int:
        return int(
            await self._ctx.scripts.backlog_claim(
                keys=self._ctx.task_keys(task_id, self._k.backlog, self._k.inbox(agent_id)),
                args=[task_id, agent_id, format_hash_time(utc_now()), message_json, "1" if require_record else "0"],
            )
        )
