"""The shared backlog: add, list, claim, assign-all, delete (reference §5.3).

The backlog list is the catalogue of queued shared work in every queue backend; the backend is told
after the catalogue changed (``enqueue`` after the record exists, ``withdraw`` after a delete), so
a crash in between never leaves the queue pointing at a task that is not there. Claims resolve the
agent before touching the backlog (GAP 18) and move task, backlog and inbox in one atomic step; the
backend is not told, since its copy of a claimed task goes stale by itself (the backlog no longer holds
it, which every backend checks when a worker takes shared work).
"""

from __future__ import annotations

import msgspec

from townhall.auth import Principal
from townhall.domain import Task
from townhall.domain_errors import BacklogTaskGone, TaskNotFound
from townhall.queues import QueueBackend
from townhall.services.agents import AgentRef
from townhall.services.inputs import check_tags, check_text, check_timeout, resolve_id
from townhall.services.recipients import WorkRecipients
from townhall.services.tasks import task_assign_message
from townhall.store import TownStore

MISSING_RECORD = "(task record not found)"


class BacklogItem(msgspec.Struct, frozen=True):
    task_id: str
    description: str
    tags: list[str]


class Claim(msgspec.Struct, frozen=True):
    task_id: str
    agent: AgentRef


class BulkAssignment(msgspec.Struct, frozen=True):
    agent: AgentRef
    task_ids: list[str]


class BacklogService:
    def __init__(self, store: TownStore, queue: QueueBackend, recipients: WorkRecipients) -> None:
        self.store = store
        self.queue = queue
        self.recipients = recipients

    async def add(self, description: str, tags: list[str] | None = None, timeout_secs: float | None = None) -> Task:
        """A new pending task on the shared queue; ``timeout_secs`` bounds each attempt (``None``: the
        town's default)."""
        check_text("description", description)
        task = Task.new(description, tags=check_tags(tags), timeout_secs=check_timeout(timeout_secs))
        await self.queue.add_task(task)
        return task

    async def list(self) -> list[BacklogItem]:
        """FIFO order; an id whose record is gone is still listed, as upstream does."""
        return [
            BacklogItem(task_id=task_id, description=MISSING_RECORD if description is None else description,
                        tags=tags)
            for task_id, description, tags in await self.store.overview.backlog()
        ]

    async def claim(self, task_id: str, agent_ref: str, *, start: bool = False,
                    caller: Principal | None = None) -> Claim:
        """Assign one backlog task to an agent. :class:`BacklogTaskGone` if it is not (any longer) in
        the backlog; of two concurrent claims exactly one wins. A ``Stopped``/``Error`` agent refuses
        (:class:`AgentDown`) unless ``start`` restarts it."""
        task_id = await self._resolve_id(task_id)
        agent = await self.recipients.resolve(agent_ref, start=start, caller=caller)
        if not await self.store.backlog.claim(task_id, agent.id, task_assign_message(task_id, agent.id)):
            raise BacklogTaskGone(task_id)
        return Claim(task_id=task_id, agent=agent)

    async def assign_all(self, agent_ref: str, *, start: bool = False,
                         caller: Principal | None = None) -> BulkAssignment:
        """Claim every backlog task for one agent (as :meth:`claim`, ``start`` included)."""
        agent = await self.recipients.resolve(agent_ref, start=start, caller=caller)
        ids = await self.store.backlog.assign_all(agent.id, lambda tid: task_assign_message(tid, agent.id))
        return BulkAssignment(agent=agent, task_ids=ids)

    async def delete(self, task_id: str) -> str:
        """Remove a task from the backlog and delete its record (one atomic step)."""
        task_id = await self._resolve_id(task_id)
        if not await self.store.backlog.discard(task_id):
            raise BacklogTaskGone(task_id)
        await self.queue.withdraw(task_id)
        return task_id

    async def _resolve_id(self, task_id: str) -> str:
        # A prefix matching no task at all is still "not in the backlog", as for a full id.
        try:
            return await resolve_id("task_id", task_id, self.store.tasks.ids_with_prefix, TaskNotFound, "task")
        except TaskNotFound:
            raise BacklogTaskGone(task_id) from None
