"""Recovery: stale agents, reclaiming dead agents' mail, orphaned tasks (reference §5.4).

Fixes over upstream: reclaim's list mode only reports (GAP 19), ``to_backlog`` resets the task to
``pending`` before queueing it, only ``Stopped``/``Error`` agents are dead (not ``Cold``), orphan
``delete`` also removes backlog entries and task_assign messages (GAP 20), and a fresh heartbeat keeps
an agent in a long round from being "recovered" (GAP 25). Every re-route first delivers the entry to its
new place and only then removes it from the dead agent's mailbox: a crash may duplicate, never lose.
"""

from __future__ import annotations

import enum
import time
from datetime import timedelta

import msgspec

from townhall.auth import Principal
from townhall.config import Town
from townhall.domain import (
    DEAD_AGENT_STATES,
    OPEN_TASK_STATES,
    SUPERVISOR_ID,
    Agent,
    AgentState,
    Task,
    TaskAssignBody,
    TaskBody,
    TaskState,
    is_uuid,
    utc_now,
)
from townhall.domain.agents import is_safe_agent_name
from townhall.domain.lenient import LenientEnum
from townhall.queues import QueueBackend
from townhall.services.agents import AgentRef
from townhall.services.recipients import WorkRecipients
from townhall.store import InboxEntry, TaskPatch, TownStore

STALE_STATES = (AgentState.WORKING, AgentState.STARTING, AgentState.IDLE, AgentState.DRAINING)


class RecoverReport(msgspec.Struct, frozen=True):
    checked: int
    recovered: list[Agent]


class ReclaimMode(enum.Enum):
    """Where reclaim sends what it finds; internal, so it has no text form."""

    BACKLOG = enum.auto()
    LISTED = enum.auto()
    AGENT = enum.auto()


class ReclaimedItem(msgspec.Struct, frozen=True):
    """One unit of work found in a dead agent's mailbox."""

    from_agent: str
    message_id: str
    type: str
    task_id: str | None
    description: str


class ReclaimReport(msgspec.Struct, frozen=True):
    reclaimed: int
    destination: str
    items: list[ReclaimedItem]


class OrphanAction(
    LenientEnum,
    aliases={"": "list", "backlog": "to_backlog"},
    invalid=("action", "unknown action '{value}': expected one of list|to_backlog|cancel|delete"),
):
    LIST = "list"
    TO_BACKLOG = "to_backlog"
    CANCEL = "cancel"
    DELETE = "delete"


class Orphan(msgspec.Struct, frozen=True):
    task_id: str
    assigned_to: str
    state: str
    reason: str  # agent_missing | agent_terminal


class OrphanReport(msgspec.Struct, frozen=True):
    action: OrphanAction
    count: int
    orphans: list[Orphan]


_CANCEL_REASON = {
    "agent_missing": "Cancelled: assignee no longer exists",
    "agent_terminal": "Cancelled: assignee is in a terminal state",
}


class RecoveryService:
    def __init__(self, town: Town, store: TownStore, queue: QueueBackend, recipients: WorkRecipients) -> None:
        self.town = town
        self.store = store
        self.queue = queue
        self.recipients = recipients

    # ---- recover ------------------------------------------------------------------------------
    async def recover(self) -> RecoverReport:
        """Set stale active agents ``Stopped``. Stale: heartbeat older than ``stale_after_secs`` and
        the worker log (``.tt/logs/<name>.log``), if any, not written for as long. What a recovered
        agent's worker had taken goes back through the queue backend: its inbox (lists) or the shared
        docket (streams), so nothing waits for a visibility timeout."""
        agents = await self.store.agents.list_all()
        limit = timedelta(seconds=self.town.config.agent.stale_after_secs)
        now = utc_now()
        recovered: list[Agent] = []
        for agent in agents:
            if agent.state not in STALE_STATES:
                continue
            if now - agent.last_heartbeat <= limit or self._log_fresh(agent, limit.total_seconds()):
                continue
            old = await self.store.agents.set_state(agent.id, AgentState.STOPPED, allowed_from=[agent.state])
            if old is None:
                continue  # it moved meanwhile: somebody is alive
            await self.store.agents.add_activity(agent.id, "🔄 Recovered (orphaned)")
            await self.queue.requeue_dead(agent.id, pool=agent.pool is not None)
            recovered.append(agent)
        return RecoverReport(checked=len(agents), recovered=recovered)

    def _log_fresh(self, agent: Agent, max_age: float) -> bool:
        if not is_safe_agent_name(agent.name):
            return False  # never a path from a name that breaks the rule
        try:
            mtime = (self.town.state_dir / "logs" / f"{agent.name}.log").stat().st_mtime
        except OSError:
            return False
        return time.time() - mtime <= max_age

    # ---- reclaim ------------------------------------------------------------------------------
    async def reclaim(self, *, to_backlog: bool = False, to: str | None = None, from_name: str | None = None,
                      start: bool = False, caller: Principal | None = None) -> ReclaimReport:
        """Work in dead (Stopped/Error) agents' mailboxes, optionally only the agent named exactly
        ``from_name``: to the backlog (``to_backlog`` wins), to agent ``to``, or just listed. Agent ``to``
        is resolved as for an assignment: a dead one is refused (:class:`AgentDown`) unless ``start``
        restarts it first, so reclaimed work never lands in another mailbox no worker reads."""
        target: AgentRef | None = None
        if to_backlog:
            mode, destination = ReclaimMode.BACKLOG, "backlog"
        elif to is not None and to.strip():
            target = await self.recipients.resolve(to, start=start, caller=caller)
            mode, destination = ReclaimMode.AGENT, f"agent:{target.id}"
        else:
            mode, destination = ReclaimMode.LISTED, "listed"
        dead = [
            a for a in await self.store.agents.list_all()
            if a.state in DEAD_AGENT_STATES and (from_name is None or a.name == from_name)
            and (target is None or a.id != target.id)
        ]
        items: list[ReclaimedItem] = []
        for agent in dead:
            if mode is not ReclaimMode.LISTED:
                await self.queue.requeue_dead(agent.id)
            for entry in await self._mailbox(agent.id):
                item = await self._reclaim_entry(agent, entry, mode, target)
                if item is not None:
                    items.append(item)
        return ReclaimReport(reclaimed=len(items), destination=destination, items=items)

    async def _mailbox(self, agent_id: str) -> list[InboxEntry]:
        lengths = (await self.store.messages.lengths([agent_id]))[agent_id]
        entries: list[InboxEntry] = []
        if lengths.urgent:
            entries += await self.store.messages.peek(agent_id, lengths.urgent, urgent=True)
        if lengths.inbox:
            entries += await self.store.messages.peek(agent_id, lengths.inbox)
        return entries

    async def _reclaim_entry(
        self, agent: Agent, entry: InboxEntry, mode: ReclaimMode, target: AgentRef | None
    ) -> ReclaimedItem | None:
        message = entry.message
        body = message.body if message else None
        item: ReclaimedItem | None = None
        if isinstance(body, TaskAssignBody) and message is not None:
            if not is_uuid(body.task_id):
                if mode is not ReclaimMode.LISTED:
                    await self._take(agent.id, entry)  # unusable, as upstream: dropped uncounted
                return None
            task = await self.store.tasks.get(body.task_id)
            item = ReclaimedItem(from_agent=agent.name, message_id=message.id, type="task_assign",
                                 task_id=body.task_id, description=task.description if task else "")
            if mode is ReclaimMode.BACKLOG:
                if task is not None and not task.state.is_terminal:
                    if not await self._take(agent.id, entry):
                        return None
                    await self._requeue_task(body.task_id)
                    return item
                item = None  # nothing left to do for a finished or vanished task
            elif mode is ReclaimMode.AGENT and target is not None:
                # Record and message move together (the ordering rule): the target's worker never
                # reads the task_assign while the record still names the dead agent.
                moved = await self.store.handover.reassign_entry(body.task_id, entry, from_agent=agent.id,
                                                                 to_agent=target.id)
                return item if moved else None
        elif isinstance(body, TaskBody) and message is not None:
            item = ReclaimedItem(from_agent=agent.name, message_id=message.id, type="task", task_id=None,
                                 description=body.description)
            if mode is ReclaimMode.BACKLOG:
                if not await self._take(agent.id, entry):
                    return None
                task = Task.new(body.description)
                await self.queue.add_task(task)
                return msgspec.structs.replace(item, task_id=task.id)
            if mode is ReclaimMode.AGENT and target is not None:
                if not await self._take(agent.id, entry):
                    return None
                await self.store.messages.reroute(entry, target.id)
                return item
        elif mode is ReclaimMode.AGENT and target is not None:
            if await self._take(agent.id, entry):
                await self.store.messages.reroute(entry, target.id)  # moved, not counted
            return None
        else:
            return None  # listed, or not work for the backlog: left where it is
        if mode is not ReclaimMode.LISTED:
            await self._take(agent.id, entry)
        return item

    async def _take(self, agent_id: str, entry: InboxEntry) -> bool:
        """Remove the entry; ``False`` when it was gone already. Work is taken *before* it is moved on:
        with several townhall processes or replicas reclaiming at once, each entry is moved only by the
        one whose removal succeeded (moving first would let two of them each make a task of it)."""
        return await self.store.messages.remove(agent_id, [entry.raw], urgent=entry.urgent) == 1

    async def _requeue_task(self, task_id: str) -> bool:
        """Back to ``pending`` (no assignee, not started) and into the shared queue, the record and the
        backlog entry in one step (:meth:`QueueBackend.enqueue`)."""
        return await self.queue.enqueue(task_id)

    # ---- orphan tasks -------------------------------------------------------------------------
    async def orphan_tasks(self, action: str | OrphanAction | None = None) -> OrphanReport:
        """Open tasks whose assignee has no record or is terminal (Stopped/Error/Cold). The supervisor
        mailbox is never an orphan's assignee. The list is taken before the action is applied."""
        act = action if isinstance(action, OrphanAction) else OrphanAction.parse(action)
        tasks = [t for t in await self.store.tasks.open_tasks() if t.assigned_to and t.assigned_to != SUPERVISOR_ID]
        assignees = sorted({t.assigned_to for t in tasks if t.assigned_to})
        records = dict(zip(assignees, await self.store.agents.get_many(assignees)))
        orphans: list[Orphan] = []
        for task in tasks:
            agent = records.get(task.assigned_to or "")
            if agent is None:
                reason = "agent_missing"
            elif agent.state.is_terminal:
                reason = "agent_terminal"
            else:
                continue
            orphans.append(Orphan(task_id=task.id, assigned_to=task.assigned_to or "", state=task.state.value,
                                  reason=reason))
        for orphan in orphans:
            await self._apply(act, orphan)
        return OrphanReport(action=act, count=len(orphans), orphans=orphans)

    async def _apply(self, action: OrphanAction, orphan: Orphan) -> None:
        if action is OrphanAction.TO_BACKLOG:
            if await self._requeue_task(orphan.task_id):
                await self._drop_assignments(orphan)
        elif action is OrphanAction.CANCEL:
            await self.store.tasks.transition(
                orphan.task_id, TaskState.CANCELLED,
                TaskPatch(result=_CANCEL_REASON[orphan.reason], completed_at=utc_now()),
                allowed_from=OPEN_TASK_STATES,
            )
        elif action is OrphanAction.DELETE:
            await self.queue.withdraw(orphan.task_id)
            await self.store.backlog.remove(orphan.task_id)
            await self._drop_assignments(orphan)
            await self.store.tasks.delete(orphan.task_id)

    async def _drop_assignments(self, orphan: Orphan) -> None:
        """The dead assignee's task_assign for this task would deliver it a second time: remove it."""
        for entry in await self._mailbox(orphan.assigned_to):
            body = entry.message.body if entry.message else None
            if isinstance(body, TaskAssignBody) and body.task_id == orphan.task_id:
                await self._take(orphan.assigned_to, entry)
