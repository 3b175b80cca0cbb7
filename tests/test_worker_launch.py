"""REST spawn with launcher ``local`` starts a real worker; REST kill stops it cleanly. Plus the
service-side recovery of a dead worker's taken work (``requeue_dead`` / the upkeep sweep)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import redis
import redis.asyncio as aioredis

from tests.support.workers import fake_town, wait_for
from townhall.builtin.queue_lists import ListsQueue
from townhall.builtin.queue_streams import StreamsQueue
from townhall.domain import Task, TaskState
from townhall.keys import TownKeys
from townhall.queues import task_assign_message
from townhall.store import TownStore
from townhall.testing.process import TownhallProcess


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (ProcessLookupError, FileNotFoundError):
        return False
    return state != "Z"


def test_rest_spawn_runs_a_worker_and_kill_stops_it(tmp_path: Path, town_name: str, redis_url: str,
                                                     sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, launcher="local")
    keys = TownKeys(town_name)
    server = TownhallProcess(tmp_path).start()
    try:
        spawned = httpx.post(f"{server.url}/v1/agents", json={"name": "w1", "cli": "fake"}, timeout=10)
        assert spawned.status_code == 201, spawned.text
        agent_id = spawned.json()["agent_id"]
        holder = str(wait_for(lambda: sync_redis.get(keys.worker_alive(agent_id))))
        pid = int(holder.split(":")[1])
        assigned = httpx.post(f"{server.url}/v1/tasks/assign", json={"agent": "w1", "task": "hello"}, timeout=10)
        assert assigned.status_code == 201, assigned.text
        task_id = assigned.json()["task_id"]
        wait_for(lambda: sync_redis.hget(keys.task(task_id), "state") == "completed")

        killed = httpx.post(f"{server.url}/v1/agents/w1/kill", timeout=10)
        assert killed.status_code == 200
        wait_for(lambda: not _pid_alive(pid))
        assert sync_redis.hget(keys.agent(agent_id), "state") == "stopped"
        assert not sync_redis.exists(keys.worker_alive(agent_id))  # released on a clean exit
        log = (tmp_path / ".tt" / "logs" / "w1.log").read_text()
        assert "stopping: stop requested" in log and "Traceback" not in log
    finally:
        server.stop()


async def test_lists_dead_worker_shared_work_goes_back_to_the_backlog(aredis: aioredis.Redis,
                                                                     town_name: str) -> None:
    # Issue 12 changed this: the sweep used to put shared work into the dead agent's own inbox, where
    # no live worker would ever read it.
    store = TownStore(aredis, town_name)
    queue = ListsQueue(store)
    task = await store.tasks.create(Task.new("shared"))
    direct = await store.tasks.create(Task.new("direct", state=TaskState.ASSIGNED, assigned_to="a1"))
    await store.messages.send(task_assign_message(direct.id, "a1"))
    await queue.enqueue(task.id)
    worker = queue.consumer("a1", blocking=aredis, visibility_timeout_secs=1)
    first, second = await worker._take_mailbox(), await worker._take_shared()
    assert first is not None and first.task_id == direct.id
    assert second is not None and second.task_id == task.id
    assert (await store.tasks.get(task.id)).state is TaskState.ASSIGNED  # type: ignore[union-attr]
    await store.agents._r.sadd(store.keys.agent_index, "a1")
    # The worker dies (no liveness key): shared work to the backlog, the direct assignment to its inbox.
    assert await queue.sweep(1) == 2
    assert await store.processing.entries("a1") == []
    assert await store.backlog.list() == [task.id]
    record = await store.tasks.get(task.id)
    assert record is not None and record.state is TaskState.PENDING and record.assigned_to is None
    assert [e.message.body.task_id for e in await store.messages.peek("a1", 10)] == [direct.id]  # type: ignore[union-attr]
    assert await queue.requeue_dead("a1") == 0


async def test_lists_pool_agent_direct_work_goes_to_the_backlog(aredis: aioredis.Redis, town_name: str) -> None:
    store = TownStore(aredis, town_name)
    queue = ListsQueue(store)
    direct = await store.tasks.create(Task.new("direct", state=TaskState.ASSIGNED, assigned_to="p1"))
    await store.messages.send(task_assign_message(direct.id, "p1"))
    assert (await queue.consumer("p1", blocking=aredis, visibility_timeout_secs=1).take()) is not None
    assert await queue.requeue_dead("p1", pool=True) == 1
    assert await store.backlog.list() == [direct.id]
    assert await store.messages.inbox_len("p1") == 0
    assert await queue.requeue_dead("p1", pool=True) == 0  # the entry is gone: put back once


async def test_streams_requeue_dead_reannounces_its_entries(aredis: aioredis.Redis, town_name: str) -> None:
    store = TownStore(aredis, town_name)
    queue = StreamsQueue(store)
    task = await store.tasks.create(Task.new("shared"))
    await queue.enqueue(task.id)
    worker = queue.consumer("a1", blocking=aredis, visibility_timeout_secs=60)
    taken = await worker.take()
    assert taken is not None and taken.entry_id
    assert await queue.requeue_dead("a1") == 1
    record = await store.tasks.get(task.id)
    assert record is not None and record.state is TaskState.PENDING and record.assigned_to is None
    assert await store.backlog.list() == [task.id]
    assert await store.docket.pending_count() == 0
    other = queue.consumer("a2", blocking=aredis, visibility_timeout_secs=60)
    again = await other.take()
    assert again is not None and again.task_id == task.id and again.entry_id != taken.entry_id
