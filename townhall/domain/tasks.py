"""Task records (reference §3.2)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from townhall.domain.ids import new_id
from townhall.domain.lenient import LenientEnum
from townhall.domain.timestamps import utc_now


# ``in_flight`` is an upstream alias of ``running``; unknown values read as ``pending``.
class TaskState(
    LenientEnum, fallback="pending", aliases={"in_flight": "running"}, terminal=("completed", "failed", "cancelled")
):
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_TASK_STATES = TaskState.terminal_states()
OPEN_TASK_STATES = (TaskState.PENDING, TaskState.ASSIGNED, TaskState.RUNNING)


class Task(msgspec.Struct, kw_only=True):
    id: str
    description: str = ""
    state: TaskState = TaskState.PENDING
    assigned_to: str | None = None
    created_at: datetime = msgspec.field(default_factory=utc_now)
    updated_at: datetime = msgspec.field(default_factory=utc_now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: str | None = None
    parent_id: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    #: Seconds one attempt may run before the worker stops it; ``None``: the town's
    #: ``[agent] task_timeout_secs``.
    timeout_secs: int | None = None
    #: Runs begun (a run handed back unfinished is not counted); counted only by the attempt scripts
    #: (``townhall/store/attempts.py``), so writing a record never sets it.
    attempts: int = 0

    @classmethod
    def new(
        cls,
        description: str,
        *,
        tags: list[str] | None = None,
        state: TaskState = TaskState.PENDING,
        assigned_to: str | None = None,
        parent_id: str | None = None,
        timeout_secs: int | None = None,
    ) -> Task:
        now = utc_now()
        return cls(
            id=new_id(),
            description=description,
            state=state,
            assigned_to=assigned_to,
            created_at=now,
            updated_at=now,
            parent_id=parent_id,
            tags=list(tags or []),
            timeout_secs=timeout_secs,
        )
