"""Two townhall replicas on one town, and what must hold of the town after they raced."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import redis

from townhall.domain.tasks import OPEN_TASK_STATES, TaskState
from townhall.keys import TownKeys
from townhall.store import escape_glob
from townhall.testing.process import TownhallProcess


def start_replicas(town_dir: Path, count: int = 2) -> list[TownhallProcess]:
    """``count`` real townhall processes of the town, started side by side."""
    procs = [TownhallProcess(town_dir).start(wait=False) for _ in range(count)]
    for proc in procs:
        proc.wait_healthy(120)
    return procs


def task_states(r: redis.Redis, town: str) -> dict[str, str]:
    """Every task record's state, read from the records themselves."""
    keys = TownKeys(town)
    states: dict[str, str] = {}
    for key in r.scan_iter(match=escape_glob(keys.prefix) + "task:*", count=1000):
        ident = key[len(keys.prefix) + len("task:"):]
        if ":" not in ident:
            states[ident] = TaskState.parse(r.hget(key, "state")).value
    return states


def assert_task_indexes_consistent(r: redis.Redis, town: str) -> dict[str, str]:
    """The open-state sets hold exactly the tasks in those states, and every count is the number of
    records in its state. Returns the states."""
    keys = TownKeys(town)
    states = task_states(r, town)
    for state in OPEN_TASK_STATES:
        indexed = r.smembers(keys.tasks_in_state(state.value))
        assert indexed == {i for i, s in states.items() if s == state.value}, state
    counts = r.hgetall(keys.task_counts)
    actual = Counter(states.values())
    for state in TaskState:
        assert int(counts.get(state.value, 0)) == actual.get(state.value, 0), (state, counts, actual)
    return states


def assignments(r: redis.Redis, town: str) -> Counter[str]:
    """How many ``task_assign`` messages name each task, over every mailbox of the town."""
    keys = TownKeys(town)
    found: Counter[str] = Counter()
    for pattern in ("inbox:*", "urgent:*", "processing:*"):
        for key in r.scan_iter(match=escape_glob(keys.prefix) + pattern, count=1000):
            for raw in r.lrange(key, 0, -1):
                message = json.loads(raw)
                if message.get("type") == "task_assign":
                    found[message["task_id"]] += 1
    return found
