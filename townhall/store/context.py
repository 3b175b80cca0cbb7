"""What every sub-store shares: the client, the key names and the loaded Lua scripts."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import msgspec
import redis.asyncio as aioredis

from townhall.keys import TownKeys
from townhall.store import scripts
from townhall.store.codec import HashWrite, split_fields


class Scripts:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.task_write = redis.register_script(scripts.TASK_WRITE)
        self.task_delete = redis.register_script(scripts.TASK_DELETE)
        self.task_create_push = redis.register_script(scripts.TASK_CREATE_PUSH)
        self.task_repair = redis.register_script(scripts.TASK_REPAIR)
        self.task_finish = redis.register_script(scripts.TASK_FINISH)
        self.backlog_claim = redis.register_script(scripts.BACKLOG_CLAIM)
        self.backlog_discard = redis.register_script(scripts.BACKLOG_DISCARD)
        self.agent_write = redis.register_script(scripts.AGENT_WRITE)
        self.agent_incr = redis.register_script(scripts.AGENT_INCR)
        self.agent_clear_current_task = redis.register_script(scripts.AGENT_CLEAR_CURRENT_TASK)
        self.inbox_drain = redis.register_script(scripts.INBOX_DRAIN)
        self.processing_restore = redis.register_script(scripts.PROCESSING_RESTORE)
        self.counter_floor = redis.register_script(scripts.COUNTER_FLOOR)
        self.lock_release = redis.register_script(scripts.LOCK_RELEASE)
        self.agent_delete = redis.register_script(scripts.AGENT_DELETE)


class StoreContext:
    def __init__(self, redis: aioredis.Redis, keys: TownKeys) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = Scripts(redis)

    def task_keys(self, task_id: str, *extra: str) -> list[str]:
        """The fixed key layout of the task scripts (see :mod:`townhall.store.scripts`)."""
        k = self.keys
        return [
            k.task(task_id),
            k.task_counts,
            k.tasks_completed_total,
            k.tasks_in_state("pending"),
            k.tasks_in_state("assigned"),
            k.tasks_in_state("running"),
            *extra,
        ]


def patch_values(patch: msgspec.Struct) -> dict[str, Any]:
    """The fields of a patch struct that were set (``UNSET`` ones are left alone)."""
    return {
        name: value
        for name in patch.__struct_fields__
        if (value := getattr(patch, name)) is not msgspec.UNSET
    }


def write_args(write: HashWrite) -> list[str]:
    """``nset, f1, v1, …, deleted…`` as the write scripts take them."""
    args: list[str] = [str(len(write.set))]
    for name, value in write.set.items():
        args += [name, value]
    args += list(write.delete)
    return args


def hash_write(values: Mapping[str, object]) -> HashWrite:
    return split_fields(values)


def csv(states: Iterable[Any] | None) -> str:
    if states is None:
        return ""
    values = [s.value if hasattr(s, "value") else str(s) for s in states]
    # An empty allowed set must reject everything, which '' would not: use a value no state has.
    return ",".join(values) if values else "\x00"
