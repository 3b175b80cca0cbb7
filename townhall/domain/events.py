"""Town events (reference §3.6): what happened, as stored in the ``data`` field of stream entries."""

from __future__ import annotations

from datetime import datetime

import msgspec

from townhall.domain.timestamps import utc_now


class TownEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One entry of the town's event streams (field ``data``), in the original's shape."""

    event_type: str  # snake_case, e.g. agent_interrupted, mission_event
    message: str
    timestamp: datetime = msgspec.field(default_factory=utc_now)
    agent_id: str | None = None
    task_id: str | None = None
    mission_id: str | None = None
    old_state: str | None = None
    new_state: str | None = None
    parent_agent_id: str | None = None
    child_agent_id: str | None = None
    scope: str | None = None
    spawn_mode: str | None = None
