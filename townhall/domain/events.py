"""Town events (reference §3.6): what happened, as stored in the ``data`` field of stream entries, and
the kinds townhall itself emits (``docs/events.md``)."""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec

from townhall.domain.timestamps import utc_now


class EventRefs(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What an event names, in the original's field names: every field optional, left out when unset."""

    agent_id: str | None = None
    task_id: str | None = None
    mission_id: str | None = None
    #: Task/agent state (or scaling recommendation) before and after the change.
    old_state: str | None = None
    new_state: str | None = None
    parent_agent_id: str | None = None
    child_agent_id: str | None = None
    scope: str | None = None
    spawn_mode: str | None = None
    message_id: str | None = None
    from_agent_id: str | None = None


class TownEvent(EventRefs, kw_only=True, omit_defaults=True):
    """One entry of the town's event streams (field ``data``), in the original's shape; the last two
    fields of :class:`EventRefs` are townhall's additions, which the original ignores."""

    event_type: str  # snake_case, e.g. agent_interrupted, mission_event
    message: str
    timestamp: datetime = msgspec.field(default_factory=utc_now)


class EventType(str, enum.Enum):
    """The event types a ``types`` filter may name: what townhall emits, plus what the original's
    tools emit (``agent_interrupted``, ``agent_resumed``, ``agent_stopped``, ``mission_event``)."""

    TASK_CREATED = "task_created"
    TASK_ASSIGNED = "task_assigned"
    TASK_STARTED = "task_started"
    TASK_COMPLETED = "task_completed"
    TASK_FAILED = "task_failed"
    TASK_CANCELLED = "task_cancelled"
    TASK_RETRIED = "task_retried"
    TASK_REQUEUED = "task_requeued"
    TASK_DELETED = "task_deleted"
    AGENT_CREATED = "agent_created"
    AGENT_STATE_CHANGED = "agent_state_changed"
    AGENT_REMOVED = "agent_removed"
    MESSAGE_SENT = "message_sent"
    SCALING_CHANGED = "scaling_recommendation_changed"
    AGENT_INTERRUPTED = "agent_interrupted"
    AGENT_RESUMED = "agent_resumed"
    AGENT_STOPPED = "agent_stopped"
    MISSION_EVENT = "mission_event"


class EventRecord(EventRefs, kw_only=True, omit_defaults=True):
    """One event as ``GET /v1/events`` and ``tt events --json`` show it: the stored :class:`TownEvent`
    plus ``id``, its stream entry id (what ``Last-Event-ID`` resumes from). Fields an entry does not
    have are left out; entries written by other tools keep whatever ``event_type`` they use."""

    #: The Redis stream entry id, ``<milliseconds>-<sequence>``; increases with every event.
    id: str
    #: snake_case; see :class:`EventType` for the kinds townhall emits.
    event_type: str
    #: One line for people.
    message: str = ""
    #: RFC 3339, UTC, as the writer recorded it.
    timestamp: str = ""


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a reader wants; ``None`` fields match everything. ``agent`` matches the agent, parent,
    child or sender the event names."""

    agent_id: str | None = None
    task_id: str | None = None
    mission_id: str | None = None
    types: frozenset[str] | None = None

    def matches(self, event: EventRecord) -> bool:
        if self.types is not None and event.event_type not in self.types:
            return False
        if self.task_id is not None and event.task_id != self.task_id:
            return False
        if self.mission_id is not None and event.mission_id != self.mission_id:
            return False
        if self.agent_id is not None and self.agent_id not in (
            event.agent_id, event.parent_agent_id, event.child_agent_id, event.from_agent_id
        ):
            return False
        return True
