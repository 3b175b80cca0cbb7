"""Hash encodings of agents and tasks exactly as upstream tinytown writes them (reference §3.1–§3.2).

Every value is a string; optional fields that are empty are *absent* from the hash, so an encoder
returns both the fields to set and the optional fields to delete (in the same transaction).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Mapping

import msgspec

from townhall.domain.agents import Agent, AgentState, AgentType, SpawnMode
from townhall.domain.lenient import LenientEnum
from townhall.domain.tasks import Task, TaskState
from townhall.domain.timestamps import format_hash_time, parse_time, utc_now

log = logging.getLogger(__name__)

# Ids read back as "none" when empty, so an empty string is written as an absent field.
_EMPTY_IS_ABSENT = frozenset({"nickname", "role_id", "parent_agent_id", "current_task", "assigned_to", "parent_id"})


class HashWrite(msgspec.Struct, frozen=True):
    """Fields to ``HSET`` and optional fields to ``HDEL``, applied together."""

    set: dict[str, str]
    delete: tuple[str, ...] = ()


def encode_value(value: object) -> str | None:
    """One hash value; ``None`` means "absent" (the field is deleted)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_hash_time(value)
    if isinstance(value, LenientEnum):
        return value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return msgspec.json.encode(value).decode()
    return str(value)


def split_fields(values: Mapping[str, object]) -> HashWrite:
    fields: dict[str, str] = {}
    cleared: list[str] = []
    for name, value in values.items():
        text = encode_value(value)
        if text is None or (text == "" and name in _EMPTY_IS_ABSENT):
            cleared.append(name)
        else:
            fields[name] = text
    return HashWrite(set=fields, delete=tuple(cleared))


def agent_to_hash(agent: Agent) -> HashWrite:
    return split_fields({name: getattr(agent, name) for name in agent.__struct_fields__})


def task_to_hash(task: Task) -> HashWrite:
    return split_fields({name: getattr(task, name) for name in task.__struct_fields__})


def _opt(h: Mapping[str, str], name: str) -> str | None:
    value = h.get(name)
    return value if value else None


def _uint(h: Mapping[str, str], name: str) -> int:
    try:
        return max(int(h.get(name) or 0), 0)
    except ValueError:
        return 0


def _record_head(h: Mapping[str, str]) -> tuple[str, datetime, datetime] | None:
    """``(id, created_at, now)`` of a record hash (a missing ``created_at`` reads as now); ``None``
    when the hash is empty or lacks an id (upstream cannot parse such a record either)."""
    record_id = h.get("id")
    if not record_id:
        return None
    now = utc_now()
    return record_id, parse_time(h.get("created_at")) or now, now


def agent_from_hash(h: Mapping[str, str]) -> Agent | None:
    head = _record_head(h)
    if head is None:
        return None
    agent_id, created, now = head
    return Agent(
        id=agent_id,
        name=h.get("name", ""),
        cli=h.get("cli", ""),
        nickname=_opt(h, "nickname"),
        role_id=_opt(h, "role_id"),
        parent_agent_id=_opt(h, "parent_agent_id"),
        spawn_mode=SpawnMode.parse(h.get("spawn_mode")),
        agent_type=AgentType.parse(h.get("agent_type")),
        state=AgentState.parse(h.get("state")),
        current_task=_opt(h, "current_task"),
        created_at=created,
        last_heartbeat=parse_time(h.get("last_heartbeat")) or now,
        last_active_at=parse_time(h.get("last_active_at")) or created,
        tasks_completed=_uint(h, "tasks_completed"),
        rounds_completed=_uint(h, "rounds_completed"),
        pool=_opt(h, "pool"),
    )


def task_from_hash(h: Mapping[str, str]) -> Task | None:
    head = _record_head(h)
    if head is None:
        return None
    task_id, created, _ = head
    return Task(
        id=task_id,
        description=h.get("description", ""),
        state=TaskState.parse(h.get("state")),
        assigned_to=_opt(h, "assigned_to"),
        created_at=created,
        updated_at=parse_time(h.get("updated_at")) or created,
        started_at=parse_time(h.get("started_at")),
        completed_at=parse_time(h.get("completed_at")),
        result=h.get("result"),
        parent_id=_opt(h, "parent_id"),
        tags=_tags(h.get("tags"), task_id),
        timeout_secs=_uint(h, "timeout_secs") or None,
    )


def _tags(raw: str | None, task_id: str) -> list[str]:
    if not raw:
        return []
    try:
        tags = msgspec.json.decode(raw, type=list[str])
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("task %s: unreadable tags %r, treating as none", task_id, raw)
        return []
    return tags
