"""What a user may do to a task once it exists: cancel it, or retry it (``POST /v1/tasks/{id}/cancel``,
``/retry``; ``tt task cancel|retry``).

Cancel: a queued task (pending, assigned) is withdrawn from wherever it waits — the backlog, its
assignee's inbox or urgent list — and becomes ``cancelled`` in one step; a task a worker holds but has not
begun (its processing list, the docket's pending entries) is skipped by that worker, which finds it
finished. A running task becomes ``cancelled`` at once too; its worker checks the task's state while the
CLI runs (every second, as it checks its stop flag), stops the CLI's process group and records nothing
more. Retry: a failed or cancelled task is ``pending`` again, last on the shared queue, with its attempts
reset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.auth import Principal
from townhall.domain import Task, TaskState
from townhall.domain_errors import Conflict, TaskNotFound
from townhall.queues import QueueBackend
from townhall.store import AgentPatch, TownStore
from townhall.services.tasks import find_task

if TYPE_CHECKING:
    from townhall.services.lifecycle import AgentLifecycle

#: Cancel re-reads the record this often when its assignee keeps changing under it (reclaim, handover).
_CANCEL_TRIES = 5


def by(caller: Principal | None) -> str:
    return f" by {caller.id}" if caller is not None else ""


class TaskActions:
    def __init__(self, store: TownStore, queue: QueueBackend) -> None:
        self.store = store
        self.queue = queue

    async def _task(self, task_id: str) -> Task:
        return await find_task(self.store, task_id)  # a full id or a unique prefix of one

    async def cancel(self, task_id: str, *, caller: Principal | None = None) -> Task:
        """``cancelled`` (``result`` says who cancelled it) from pending, assigned or running; a
        finished task is a :class:`Conflict`. Returns the record as it is now."""
        task = await self._task(task_id)
        for _ in range(_CANCEL_TRIES):
            if task.state.is_terminal:
                break
            done = await self.store.actions.cancel(task.id, f"Cancelled{by(caller)}", assignee=task.assigned_to)
            if done.applied:
                return await self._task(task.id)
            task = await self._task(task.id)
        raise Conflict(f"task {task.id} is {task.state.value} and cannot be cancelled")

    async def retry(self, task_id: str) -> Task:
        """A ``failed`` or ``cancelled`` task ``pending`` again on the shared queue, attempts reset
        (else :class:`Conflict`). Returns the record as it is now."""
        task = await self._task(task_id)
        done = await self.store.actions.retry(task.id)
        if not done.applied:
            if done.before is None:
                raise TaskNotFound(task.id)
            allowed = f"{TaskState.FAILED.value} or {TaskState.CANCELLED.value}"
            raise Conflict(f"task {task.id} is {done.before.value}; only a {allowed} task can be retried")
        await self.queue.announce(task.id)
        return await self._task(task.id)

    # ---- the worker's side of a cancel ----------------------------------------------------------------
    async def cancelled(self, task_id: str) -> bool:
        """Whether the task a worker is running was cancelled meanwhile (one ``HGET``, polled while the
        CLI runs)."""
        return await self.store.tasks.state_of(task_id) is TaskState.CANCELLED

    async def run_cancelled(self, agent_id: str, round_no: int, task_id: str, lifecycle: AgentLifecycle) -> None:
        """The worker stopped the CLI of a cancelled task: the round's activity line, the round counted,
        ``Idle`` again."""
        await self.store.agents.add_activity(agent_id, f"Round {round_no}: task {task_id} 🚫 cancelled")
        await self.store.agents.update(agent_id, AgentPatch(rounds_completed=round_no))
        await lifecycle.become_idle(agent_id)
