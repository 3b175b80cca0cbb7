"""Town records as upstream tinytown 0.10 defines them (reference §3), as msgspec types.

One module per record family (:mod:`~townhall.domain.agents`, :mod:`~townhall.domain.tasks`,
:mod:`~townhall.domain.messages`, :mod:`~townhall.domain.missions`, :mod:`~townhall.domain.events`)
plus time and id helpers. Records are plain typed values with the small rules that belong to them
(predicates, display names, message summaries); how they are laid out and encoded in Redis is known
only to :mod:`townhall.store`. New code imports from the submodules; this package re-exports the
public names for existing callers.
"""

from __future__ import annotations

from townhall.domain.agents import (
    ACTIVE_AGENT_STATES,
    RESERVED_AGENT_NAMES,
    SUPERVISOR_ID,
    DEAD_AGENT_STATES,
    TERMINAL_AGENT_STATES,
    Agent,
    AgentState,
    AgentType,
    SpawnMode,
    is_reserved_agent_name,
    nickname_for,
)
from townhall.domain.events import EventFilter, EventRecord, EventType, TownEvent
from townhall.domain.ids import is_uuid, new_id
from townhall.domain.lenient import LenientEnum
from townhall.domain.messages import (
    AckAcknowledged,
    AckApproved,
    AckReceived,
    AckRejected,
    AckThanks,
    AckType,
    ConfirmationBody,
    CustomBody,
    InformationalBody,
    Message,
    MessageBody,
    PingBody,
    PongBody,
    Priority,
    QueryBody,
    ShutdownBody,
    StatusRequestBody,
    StatusResponseBody,
    TaskAssignBody,
    TaskBody,
    TaskDoneBody,
    TaskFailedBody,
    ack_from_text,
)
from townhall.domain.missions import (
    TERMINAL_MISSION_STATES,
    DocObjective,
    IssueObjective,
    Mission,
    MissionPolicy,
    MissionState,
    ObjectiveRef,
)
from townhall.domain.nicknames import NICKNAMES
from townhall.domain.tasks import OPEN_TASK_STATES, TERMINAL_TASK_STATES, Task, TaskState
from townhall.domain.timestamps import format_hash_time, format_json_time, parse_time, utc_now

__all__ = [
    "ACTIVE_AGENT_STATES",
    "NICKNAMES",
    "OPEN_TASK_STATES",
    "RESERVED_AGENT_NAMES",
    "SUPERVISOR_ID",
    "DEAD_AGENT_STATES",
    "TERMINAL_AGENT_STATES",
    "TERMINAL_MISSION_STATES",
    "TERMINAL_TASK_STATES",
    "AckAcknowledged",
    "AckApproved",
    "AckReceived",
    "AckRejected",
    "AckThanks",
    "AckType",
    "Agent",
    "AgentState",
    "AgentType",
    "ConfirmationBody",
    "CustomBody",
    "DocObjective",
    "InformationalBody",
    "IssueObjective",
    "LenientEnum",
    "Message",
    "MessageBody",
    "Mission",
    "MissionPolicy",
    "MissionState",
    "ObjectiveRef",
    "PingBody",
    "PongBody",
    "Priority",
    "QueryBody",
    "ShutdownBody",
    "SpawnMode",
    "StatusRequestBody",
    "StatusResponseBody",
    "Task",
    "TaskAssignBody",
    "TaskBody",
    "TaskDoneBody",
    "TaskFailedBody",
    "TaskState",
    "TownEvent",
    "EventFilter",
    "EventRecord",
    "EventType",
    "ack_from_text",
    "format_hash_time",
    "format_json_time",
    "is_reserved_agent_name",
    "is_uuid",
    "new_id",
    "nickname_for",
    "parse_time",
    "utc_now",
]
