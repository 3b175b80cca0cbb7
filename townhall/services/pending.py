"""Work assigned to agents that no worker has taken yet (``/v1/tasks/pending``, scaling, metrics).

As upstream (reference §5.2), the first 100 regular-inbox messages of every registered agent are
examined: a ``task_assign`` whose task record exists (and, unlike upstream, is not finished) counts, and
so does a plain ``task`` message. A plain message has no task record, so its *message* id is reported,
never a freshly invented one (upstream GAP 13).
"""

from __future__ import annotations

import enum
from typing import Iterable

import msgspec

from townhall.domain import Agent, TaskAssignBody, TaskBody
from townhall.store import TownStore
from townhall.store.messages import InboxEntry


class PendingSource(str, enum.Enum):
    TASK = "task"  #: a task_assign message: ``task_id`` is the task record's id
    MESSAGE = "message"  #: a plain task message: ``task_id`` is the message id


class PendingTask(msgspec.Struct, frozen=True):
    task_id: str
    description: str
    agent_id: str
    agent_name: str
    source: PendingSource


async def pending_assigned_tasks(store: TownStore, agents: list[Agent] | None = None) -> list[PendingTask]:
    if agents is None:
        agents = await store.agents.list_all()
    inboxes = await store.messages.peek_many([a.id for a in agents])
    return await pending_in(store, [(a.id, a.name, inboxes.get(a.id, [])) for a in agents])


async def pending_in(store: TownStore, inboxes: Iterable[tuple[str, str, list[InboxEntry]]]) -> list[PendingTask]:
    """The pending work in already-read inbox heads: ``(agent id, agent name, first entries)`` each."""
    found: list[tuple[str, str, str, str | None, PendingSource]] = []  # agent, name, id, description-or-None, source
    for agent_id, agent_name, entries in inboxes:
        for entry in entries:
            body = entry.message.body if entry.message else None
            if isinstance(body, TaskAssignBody):
                found.append((agent_id, agent_name, body.task_id, None, PendingSource.TASK))
            elif isinstance(body, TaskBody) and entry.message is not None:
                found.append((agent_id, agent_name, entry.message.id, body.description, PendingSource.MESSAGE))
    live = iter(await store.tasks.open_descriptions([f[2] for f in found if f[3] is None]))
    pending: list[PendingTask] = []
    for agent_id, agent_name, item_id, description, source in found:
        if description is None:
            description = next(live)
            if description is None:
                continue
        pending.append(PendingTask(task_id=item_id, description=description, agent_id=agent_id,
                                   agent_name=agent_name, source=source))
    return pending
