"""Missions: the dispatcher owns most of the record; townhall reads it and changes only its own fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Union

import msgspec

from townhall.domain.lenient import LenientEnum


class MissionState(LenientEnum, terminal=("completed", "failed")):
    PLANNING = "planning"
    RUNNING = "running"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL_MISSION_STATES = MissionState.terminal_states()


class MissionPolicy(msgspec.Struct, kw_only=True):
    max_parallel_items: int = 2
    reviewer_required: bool = True
    auto_merge: bool = False
    watch_interval_secs: int = 180


class IssueObjective(msgspec.Struct, tag_field="type", tag="issue"):
    owner: str
    repo: str
    number: int


class DocObjective(msgspec.Struct, tag_field="type", tag="doc"):
    path: str


ObjectiveRef = Union[IssueObjective, DocObjective]


class Mission(msgspec.Struct, kw_only=True):
    """The fields of ``MissionRun`` townhall reads or changes. The full stored document travels in
    ``raw`` so that saving never drops what the dispatcher wrote."""

    id: str
    state: MissionState
    objective_refs: list[ObjectiveRef] = msgspec.field(default_factory=list)
    policy: MissionPolicy = msgspec.field(default_factory=MissionPolicy)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    next_wake_at: datetime | None = None
    blocked_reason: str | None = None
    dispatcher_last_tick_at: datetime | None = None
    dispatcher_last_progress_at: datetime | None = None
    dispatcher_last_help_request_at: datetime | None = None
    dispatcher_last_help_request_reason: str | None = None
    dispatcher_help_request_attempts: int = 0
    raw: dict[str, Any] = msgspec.field(default_factory=dict)

    def clear_help_requests(self) -> None:
        self.dispatcher_last_help_request_at = None
        self.dispatcher_last_help_request_reason = None
        self.dispatcher_help_request_attempts = 0
