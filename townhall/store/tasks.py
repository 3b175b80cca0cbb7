"""Task records (``tt:{town}:task:{id}`` hashes) with our state indexes and counters.

Every write that may change a task's state goes through one Lua script, so the open-state sets, the
per-state counts and the completed-total counter always move together with the record.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Iterable, Sequence

import msgspec
from redis.exceptions import ResponseError

from townhall.domain import OPEN_TASK_STATES, Message, Task, TaskState, format_hash_time, utc_now
from townhall.store.codec import task_from_hash, task_to_hash
from townhall.store.context import StoreContext, csv, hash_write, patch_values, write_args

log = logging.getLogger(__name__)


class TaskPatch(msgspec.Struct, kw_only=True):
    """A partial task update. ``UNSET`` keeps a field; ``None`` removes an optional one."""

    description: str | msgspec.UnsetType = msgspec.UNSET
    assigned_to: str | None | msgspec.UnsetType = msgspec.UNSET
    started_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    completed_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    result: str | None | msgspec.UnsetType = msgspec.UNSET
    parent_id: str | None | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET


class TaskStore:
    def __init__(self, ctx: StoreContext) -> None:
        self._ctx = ctx
        self._r = ctx.redis
        self._k = ctx.keys

    async def create(self, task: Task) -> Task:
        await self.save(task)
        return task

    async def save(self, task: Task) -> TaskState | None:
        """Write the whole record (clearing absent optionals) and move indexes/counters. Returns the
        previous state, or ``None`` if the task is new."""
        _, old = await self._ctx.scripts.task_write(
            keys=self._ctx.task_keys(task.id),
            args=[task.id, task.state.value, "", "0", *write_args(task_to_hash(task))],
        )
        return TaskState.parse(old) if old else None

    async def transition(
        self,
        task_id: str,
        to: TaskState | None,
        patch: TaskPatch | None = None,
        *,
        allowed_from: Iterable[TaskState] | None = None,
    ) -> TaskState | None:
        """Atomic partial update of an existing task, optionally a state change (``to``), applied only
        if the current state is in ``allowed_from`` (any if ``None``). ``updated_at`` is set to now.
        Returns the previous state, or ``None`` when the task is missing or the state not allowed."""
        values = patch_values(patch) if patch is not None else {}
        values["updated_at"] = utc_now()
        write = hash_write(values)
        applied, old = await self._ctx.scripts.task_write(
            keys=self._ctx.task_keys(task_id),
            args=[task_id, to.value if to else "", csv(allowed_from), "1", *write_args(write)],
        )
        return TaskState.parse(old) if applied else None

    async def finish(
        self,
        task_id: str,
        to: TaskState,
        result: str,
        *,
        agent_id: str | None,
        allowed_from: Iterable[TaskState] | None = None,
        count_completion: bool = True,
    ) -> TaskState | None:
        """Make a task terminal (``result``, ``completed_at``) and, in the same step, clear
        ``agent_id``'s ``current_task`` if it points at the task and (``count_completion``) add one to
        its ``tasks_completed`` unless the task was already terminal. Returns the previous state, or
        ``None`` when the task is missing or its state not allowed."""
        applied, old = await self._ctx.scripts.task_finish(
            keys=[*self._ctx.task_keys(task_id), self._k.agent(agent_id) if agent_id else ""],
            args=[task_id, to.value, csv(allowed_from), format_hash_time(utc_now()), result,
                  "1" if count_completion else "0"],
        )
        return TaskState.parse(old) if applied else None

    async def create_with_message(self, task: Task, message: Message) -> None:
        """Write a new task and append its ``task_assign`` message to the recipient's inbox in one
        transaction, so an assignment is never half done."""
        await self.create_and_push(task, [(self._k.inbox(message.to), message.to_json())])

    async def create_and_push(self, task: Task, pushes: Sequence[tuple[str, str]]) -> None:
        """Write a new task and RPUSH each ``(list key, value)`` in one atomic step and round trip."""
        await self._ctx.scripts.task_create_push(
            keys=self._ctx.task_keys(task.id, *(key for key, _ in pushes)),
            args=[task.id, task.state.value, *(value for _, value in pushes), *write_args(task_to_hash(task))],
        )

    async def get(self, task_id: str) -> Task | None:
        try:
            raw = await self._r.hgetall(self._k.task(task_id))
        except ResponseError as exc:
            log.warning("task %s unreadable: %s", task_id, exc)
            return None
        return task_from_hash(raw)

    async def get_many(self, task_ids: Sequence[str]) -> list[Task | None]:
        """Records in the order asked, ``None`` where missing or unreadable; one round trip."""
        if not task_ids:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hgetall(self._k.task(task_id))
            replies = await pipe.execute(raise_on_error=False)
        return [task_from_hash(r) if isinstance(r, dict) else None for r in replies]

    async def delete(self, task_id: str) -> bool:
        return bool(await self._ctx.scripts.task_delete(keys=self._ctx.task_keys(task_id), args=[task_id]))

    async def ids_in_state(self, state: TaskState) -> set[str]:
        """Ids indexed under an open state (pending/assigned/running). Terminal states are not indexed:
        they only ever grow, and nothing may cost time proportional to them."""
        if state not in OPEN_TASK_STATES:
            raise ValueError(f"terminal state {state.value} is not indexed")
        return set(await self._r.smembers(self._k.tasks_in_state(state.value)))

    async def in_state(self, state: TaskState) -> list[Task]:
        """Records currently in an open state. Index entries that another tool made stale (it changed
        or deleted the record without maintaining our index) are repaired on the way."""
        ids = sorted(await self.ids_in_state(state))
        tasks = await self.get_many(ids)
        found: list[Task] = []
        for task_id, task in zip(ids, tasks):
            if task is not None and task.state is state:
                found.append(task)
            else:
                await self._ctx.scripts.task_repair(
                    keys=self._ctx.task_keys(task_id), args=[task_id, state.value]
                )
        return found

    async def open_tasks(self) -> list[Task]:
        """All pending, assigned and running tasks (what orphan detection and scaling look at)."""
        result: list[Task] = []
        for state in OPEN_TASK_STATES:
            result += await self.in_state(state)
        return result

    async def counts(self) -> dict[TaskState, int]:
        raw = await self._r.hgetall(self._k.task_counts)
        counts = {state: 0 for state in TaskState}
        for name, value in raw.items():
            try:
                counts[TaskState(name)] = max(int(value), 0)
            except ValueError:
                continue
        return counts

    async def completed_total(self) -> int:
        """Tasks that ever became completed; a true counter that deletes never lower."""
        value = await self._r.get(self._k.tasks_completed_total)
        return int(value or 0)
