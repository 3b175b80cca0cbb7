"""Task and backlog bodies: the task history, assign, pending work, the backlog and its actions."""

from __future__ import annotations

from typing import Sequence

import msgspec

from townhall.services.backlog import BacklogItem
from townhall.services.history import HistoryPage
from townhall.services.pending import PendingTask
from townhall.views.records import TaskView


class TaskPage(msgspec.Struct):
    """One page of the task history, newest first (by ``created_at``). ``next_cursor``: pass it as
    ``cursor`` for the next page; ``null`` at the end. A page may be shorter than ``limit`` (even empty)
    with a ``next_cursor`` when the filters rejected many candidates: keep going until it is ``null``."""

    tasks: list[TaskView]
    next_cursor: str | None

    @classmethod
    def of(cls, page: HistoryPage) -> TaskPage:
        return cls(tasks=[TaskView.of(t) for t in page.tasks], next_cursor=page.next_cursor)


class AssignResponse(msgspec.Struct):
    task_id: str
    agent_id: str
    agent_name: str


class PendingItem(msgspec.Struct):
    task_id: str
    description: str
    agent_id: str
    agent_name: str
    #: ``task`` (task_id is a task record) or ``message`` (a plain task message: task_id is its id).
    source: str


class PendingResponse(msgspec.Struct):
    tasks: list[PendingItem]
    count: int

    @classmethod
    def of(cls, pending: Sequence[PendingTask]) -> PendingResponse:
        items = [PendingItem(task_id=p.task_id, description=p.description, agent_id=p.agent_id,
                             agent_name=p.agent_name, source=p.source.value) for p in pending]
        return cls(tasks=items, count=len(items))


class BacklogEntry(msgspec.Struct):
    task_id: str
    description: str
    tags: list[str]


class BacklogResponse(msgspec.Struct):
    backlog: list[BacklogEntry]
    count: int

    @classmethod
    def of(cls, items: Sequence[BacklogItem]) -> BacklogResponse:
        entries = [BacklogEntry(task_id=i.task_id, description=i.description, tags=i.tags) for i in items]
        return cls(backlog=entries, count=len(entries))


class AddResponse(msgspec.Struct):
    task_id: str
    description: str


class ClaimResponse(msgspec.Struct):
    task_id: str
    agent_id: str
    agent_name: str


class AssignAllResponse(msgspec.Struct):
    assigned: int
    tasks: list[str]


class RemovedResponse(msgspec.Struct):
    removed: bool
    task_id: str
