"""Tasks: direct assignment and the lifecycle a worker drives (start, complete, fail, release).

Completing or failing a task moves the task, its indexes and its agent's ``current_task`` /
``tasks_completed`` in one atomic step (reference §3.2; GAP 23).
"""

from __future__ import annotations

import msgspec

from townhall.auth import Principal
from townhall.domain import OPEN_TASK_STATES, Task, TaskState, utc_now
from townhall.domain_errors import Conflict, TaskNotFound
from townhall.queues import task_assign_message
from townhall.services.agents import AgentRef
from townhall.services.inputs import check_text, check_timeout, require_uuid, resolve_id
from townhall.services.pending import PendingTask, pending_assigned_tasks
from townhall.services.recipients import WorkRecipients
from townhall.store import AgentPatch, TaskPatch, TownStore


class Assignment(msgspec.Struct, frozen=True):
    task: Task
    agent: AgentRef


async def resolve_task_id(store: TownStore, task_id: str) -> str:
    """The id of the task ``task_id`` names: a UUID, or a unique prefix of one (4+ hex digits);
    :class:`InvalidInput`, :class:`TaskNotFound` or :class:`AmbiguousId` otherwise."""
    return await resolve_id("task_id", task_id, store.tasks.ids_with_prefix, TaskNotFound, "task")


async def find_task(store: TownStore, task_id: str) -> Task:
    """The task record ``task_id`` names (as :func:`resolve_task_id` takes it); :class:`TaskNotFound`
    if absent. What every task route reads its task by, so they all take id prefixes alike."""
    resolved = await resolve_task_id(store, task_id)
    task = await store.tasks.get(resolved)
    if task is None:
        raise TaskNotFound(resolved)
    return task


class TaskService:
    def __init__(self, store: TownStore, recipients: WorkRecipients) -> None:
        self.store = store
        self.recipients = recipients

    async def resolve_id(self, task_id: str) -> str:
        """The id of the task ``task_id`` names: a UUID, or a unique prefix of one (4+ hex digits);
        :class:`InvalidInput`, :class:`TaskNotFound` or :class:`AmbiguousId` otherwise."""
        return await resolve_task_id(self.store, task_id)

    async def get(self, task_id: str) -> Task:
        """The task record (``task_id`` as :meth:`resolve_id` takes it); :class:`TaskNotFound` if absent."""
        return await find_task(self.store, task_id)

    async def get_many(self, task_ids: list[str]) -> list[Task | None]:
        """Records of full task ids in the order asked (``None`` where missing); one round trip."""
        return await self.store.tasks.get_many(task_ids)

    async def assign(self, agent_ref: str, description: str, *, start: bool = False,
                     timeout_secs: float | None = None, caller: Principal | None = None) -> Assignment:
        """Create an ``assigned`` task for the agent (may be the supervisor) and put its
        ``task_assign`` in the agent's inbox, in one transaction. The agent is resolved first; a
        ``Stopped``/``Error`` one refuses (:class:`AgentDown`) unless ``start`` restarts it.
        ``timeout_secs`` bounds each attempt (``None``: the town's default)."""
        check_text("task", description)
        timeout = check_timeout(timeout_secs)
        agent = await self.recipients.resolve(agent_ref, start=start, caller=caller)
        task = Task.new(description, state=TaskState.ASSIGNED, assigned_to=agent.id, timeout_secs=timeout)
        await self.store.tasks.create_with_message(task, task_assign_message(task.id, agent.id))
        return Assignment(task=task, agent=agent)

    async def pending(self) -> list[PendingTask]:
        return await pending_assigned_tasks(self.store)

    # ---- what a worker does with a task -------------------------------------------------------
    async def start(self, task_id: str, agent_id: str) -> Task:
        """Mark the task ``running`` on ``agent_id`` (``started_at`` now, one more of its ``attempts``)
        and point the agent's ``current_task`` at it. :class:`Conflict` if the task is already finished."""
        task_id = require_uuid("task_id", task_id)
        now = utc_now()
        old = await self.store.tasks.transition(
            task_id,
            TaskState.RUNNING,
            TaskPatch(assigned_to=agent_id, started_at=now),
            allowed_from=OPEN_TASK_STATES,
            count_attempt=True,
        )
        if old is None:
            await self._refuse(task_id, "started")
        await self.store.agents.update(agent_id, AgentPatch(current_task=task_id, last_heartbeat=now))
        return await self.get(task_id)

    async def complete(self, task_id: str, result: str, agent_id: str | None = None, *,
                       open_only: bool = False) -> Task:
        """``completed`` with ``result`` and ``completed_at``; the agent (``agent_id``, else the
        assignee) loses ``current_task`` if it pointed here and gains one ``tasks_completed`` unless
        the task was already terminal. Completing again only rewrites the result (upstream).
        ``open_only`` (a worker's run ended): a task finished meanwhile — cancelled while its CLI was
        ending — is left as it is."""
        task = await self.get(task_id)
        check_text("result", result)
        old = await self.store.tasks.finish(
            task.id, TaskState.COMPLETED, result, agent_id=agent_id or task.assigned_to,
            allowed_from=OPEN_TASK_STATES if open_only else None,
        )
        if old is None and not open_only:
            raise TaskNotFound(task.id)
        return await self.get(task.id)

    async def fail(self, task_id: str, error: str, agent_id: str | None = None) -> Task:
        """``failed`` with ``result`` = ``error``; clears the agent's ``current_task``. A task that is
        already finished is left as it is (returned unchanged)."""
        task = await self.get(task_id)
        check_text("error", error)
        if task.state.is_terminal:
            return task
        await self.store.tasks.finish(
            task.id,
            TaskState.FAILED,
            error,
            agent_id=agent_id or task.assigned_to,
            allowed_from=OPEN_TASK_STATES,
            count_completion=False,
        )
        return await self.get(task.id)

    async def release(self, task_id: str) -> Task:
        """A worker gave up on a running task (CLI error): back to ``assigned``, ``started_at``
        cleared, so it can be delivered again."""
        task_id = require_uuid("task_id", task_id)
        old = await self.store.tasks.transition(
            task_id, TaskState.ASSIGNED, TaskPatch(started_at=None), allowed_from=[TaskState.RUNNING]
        )
        if old is None:
            await self._refuse(task_id, "released")
        return await self.get(task_id)

    async def _refuse(self, task_id: str, verb: str) -> None:
        current = await self.store.tasks.get(task_id)
        if current is None:
            raise TaskNotFound(task_id)
        raise Conflict(f"task {task_id} is {current.state.value} and cannot be {verb}")
