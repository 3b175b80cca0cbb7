"""The worker's run of a task (issue 11): broken agents, retries, time limits, one log and one CLI per
run, upstream-written records, the CLI's environment and the worker's log lines. Real worker processes
with the fake CLI of ``tests/support/workers.py``."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from tests.support.workers import (agent_hash, assign_task, executions, fake_town, seed_agent, 
                                   start_worker, wait_for)
from townhall.builtin.queue_lists import ListsQueue
from townhall.builtin.queue_streams import StreamsQueue
from townhall.config import FailureBreakerConfig
from townhall.domain import Task, TaskState
from townhall.keys import TownKeys
from townhall.store import TownStore
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.worker.breaker import FailureBreaker

EXIT_BROKEN = 4
MISSING = '[agent_clis.missing]\nname = "missing"\ncommand = "definitely-not-installed-tt-cli --print"\n'


async def add_shared(aredis: aioredis.Redis, town: str, description: str, *, streams: bool) -> Task:
    store = TownStore(aredis, town)
    task = Task.new(description)
    await (StreamsQueue(store) if streams else ListsQueue(store)).add_task(task)
    return task


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _worker_log(root: Path, name: str) -> str:
    return (root / ".tt" / "logs" / f"test-{name}.log").read_text()


# ---- item 2: broken agents are contained --------------------------------------------------------------
@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_missing_program_puts_the_agent_in_error_and_returns_the_task(
        tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, sync_redis: redis.Redis,
        streams: bool) -> None:
    fake_town(tmp_path, town_name, redis_url, streams=streams, idle_timeout=2, presets=MISSING)
    keys = TownKeys(town_name)
    broken = seed_agent(sync_redis, town_name, "broken", cli="missing")
    task = await add_shared(aredis, town_name, "healthy work", streams=streams)
    assert start_worker(tmp_path, "broken", broken).wait(timeout=30) == EXIT_BROKEN
    assert agent_hash(sync_redis, town_name, broken)["state"] == "error"
    assert any("definitely-not-installed" in line or "exit 127" in line
               for line in sync_redis.lrange(keys.activity(broken), 0, -1))
    record = sync_redis.hgetall(keys.task(task.id))
    assert record["state"] == "pending" and "assigned_to" not in record  # untouched:
    assert record.get("attempts", "0") == "0" and "last_error" not in record  # not an attempt
    assert sync_redis.lrange(keys.backlog, 0, -1) == [task.id]

    healthy = seed_agent(sync_redis, town_name, "healthy")
    assert start_worker(tmp_path, "healthy", healthy).wait(timeout=30) == 0
    assert sync_redis.hget(keys.task(task.id), "state") == "completed"
    assert executions(tmp_path) == [(task.id, healthy)]


def test_failure_breaker_stops_an_agent_failing_fast_and_restart_clears_error(
        tmp_path: Path, town_name: str, redis_url: str, sync_redis: redis.Redis) -> None:
    flaky = (f'[agent_clis.flaky]\nname = "flaky"\ncommand = "MARKER={tmp_path / "x.log"} {sys.executable} '
             f'{tmp_path / "fake_cli.py"}"\nenv = {{ FAKE_FAIL = "1" }}\n')
    fake_town(tmp_path, town_name, redis_url, idle_timeout=1, presets=flaky,
              agent_extra="failure_breaker = { failures = 2, within_secs = 60 }")
    keys = TownKeys(town_name)
    # Tasks failing with their own output do not trip it: a healthy agent is not stopped by bad tasks.
    healthy = seed_agent(sync_redis, town_name, "healthy")
    bad = [Task.new(f"FAIL {n}", state=TaskState.ASSIGNED, assigned_to=healthy) for n in range(3)]
    for task in bad:
        assign_task(sync_redis, keys, task, healthy)
    assert start_worker(tmp_path, "healthy", healthy).wait(timeout=30) == 0
    assert [sync_redis.hget(keys.task(t.id), "state") for t in bad] == ["failed"] * 3

    agent_id = seed_agent(sync_redis, town_name, "w1", cli="flaky")
    first, second, third = (Task.new(f"job {n}", state=TaskState.ASSIGNED, assigned_to=agent_id) for n in range(3))
    for task in (first, second, third):
        assign_task(sync_redis, keys, task, agent_id)
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=30) == EXIT_BROKEN
    assert sync_redis.hget(keys.task(first.id), "state") == "failed"
    assert sync_redis.hget(keys.task(second.id), "state") == "assigned"  # tripped: handed back untouched
    assert sync_redis.hget(keys.task(third.id), "state") == "assigned"
    assert sync_redis.llen(keys.inbox(agent_id)) == 2
    assert agent_hash(sync_redis, town_name, agent_id)["state"] == "error"
    assert "failure breaker" in _worker_log(tmp_path, "w1")

    server = TownhallProcess(tmp_path).start()
    try:
        restarted = httpx.post(f"{server.url}/v1/agents/w1/restart", timeout=10)
        assert restarted.status_code == 200, restarted.text
    finally:
        server.stop()
    assert agent_hash(sync_redis, town_name, agent_id)["state"] == "idle"


def test_breaker_counts_a_retried_task_once_when_the_cli_has_proven_itself() -> None:
    config = FailureBreakerConfig(failures=3, within_secs=60)
    fresh = FailureBreaker(config)  # never worked: one task failing alike thrice may be a broken CLI
    assert not fresh.failed(0, "5\nflaky", "task-a") and not fresh.failed(1, "5\nflaky", "task-a")
    assert fresh.failed(2, "5\nflaky", "task-a")
    breaker = FailureBreaker(config, proven=True)  # the agent completed tasks before
    assert not any(breaker.failed(float(n), "3\nboom", "task-a") for n in range(10))  # one task's retries
    assert not breaker.failed(10, "3\nboom", "task-b")
    assert breaker.failed(11, "3\nboom", "task-c")  # a third task failing alike: the CLI is broken now
    fresh.succeeded()  # a success proves it too
    assert not any(fresh.failed(float(n), "3\nboom", "task-a") for n in range(3, 10))
    assert not fresh.failed(10, "3\nother", "task-b") and not fresh.failed(11, "3\nother", "task-c")
    assert not fresh.failed(80, "3\nother", "task-d")  # the streak's first ones are older than within_secs
    assert not fresh.failed(81, "3\nother", "task-e") and fresh.failed(82, "3\nother", "task-f")


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_retries_of_one_bad_task_do_not_trip_the_breaker(
        tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, sync_redis: redis.Redis,
        streams: bool) -> None:
    # The last shared task fails on its own merits and is retried by the only worker, whose CLI has
    # worked: its runs end alike (the same task, the same output), which says nothing about the CLI. The
    # default breaker (3 in a row) must leave the agent working and the task to max_attempts — before,
    # a healthy agent went to Error here, and the bad task then stopped every agent it reached.
    fake_town(tmp_path, town_name, redis_url, streams=streams, idle_timeout=3, agent_extra="max_attempts = 4")
    keys = TownKeys(town_name)
    good = await add_shared(aredis, town_name, "fine", streams=streams)
    bad = await add_shared(aredis, town_name, "FAIL always", streams=streams)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=60) == 0  # idle timeout, not EXIT_BROKEN
    record = sync_redis.hgetall(keys.task(bad.id))
    assert record["state"] == "failed" and record["attempts"] == "4", record
    assert sync_redis.hget(keys.task(good.id), "state") == "completed"
    assert agent_hash(sync_redis, town_name, agent_id)["state"] == "stopped"
    assert "failure breaker" not in _worker_log(tmp_path, "w1")
    # A new worker of the agent (it has completed a task) that meets a bad task first is not stopped either.
    again = await add_shared(aredis, town_name, "FAIL again", streams=streams)
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=60) == 0
    assert sync_redis.hgetall(keys.task(again.id))["attempts"] == "4"
    assert "failure breaker" not in _worker_log(tmp_path, "w1")


# ---- item 3: retries and dead letters -----------------------------------------------------------------
@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_shared_work_is_retried_then_failed_with_every_reason(
        tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, sync_redis: redis.Redis,
        streams: bool) -> None:
    fake_town(tmp_path, town_name, redis_url, streams=streams, idle_timeout=3,
              agent_extra="max_attempts = 3\nfailure_breaker = { failures = 0 }")
    keys = TownKeys(town_name)
    bad = await add_shared(aredis, town_name, "FAIL always", streams=streams)
    good = await add_shared(aredis, town_name, "fine", streams=streams)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=60) == 0
    record = sync_redis.hgetall(keys.task(bad.id))
    assert record["state"] == "failed" and record["attempts"] == "3"
    reasons = json.loads(record["attempt_errors"])
    assert [r.split(":")[0] for r in reasons] == ["attempt 1", "attempt 2", "attempt 3"]
    assert all("exit status 3" in r for r in reasons)
    assert record["result"].startswith("failed after 3 attempt(s):") and "attempt 3: exit status 3" in record["result"]
    assert record["last_error"].startswith("exit status 3")
    assert sync_redis.hget(keys.task(good.id), "state") == "completed"
    assert [t for t, _ in executions(tmp_path)].count(bad.id) == 3
    assert sync_redis.llen(keys.backlog) == 0
    assert "current_task" not in agent_hash(sync_redis, town_name, agent_id)


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_no_run_beyond_max_attempts_when_the_last_one_died_with_its_worker(
        tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, sync_redis: redis.Redis,
        streams: bool) -> None:
    # The only run allowed hangs and its worker is SIGKILLed: the run counts (a task that kills its
    # workers must not be retried forever), so the next worker finds the task with its runs spent and
    # fails it instead of running it once more (before, it ran a second time: "failed after 2
    # attempt(s)" with max_attempts = 1; the chaos test saw "failed after 9" with 8).
    fake_town(tmp_path, town_name, redis_url, streams=streams, idle_timeout=3, visibility=2,
              agent_extra="max_attempts = 1")
    keys = TownKeys(town_name)
    task = await add_shared(aredis, town_name, "FAIL SLEEP_ONCE=60", streams=streams)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    proc = start_worker(tmp_path, "w1", agent_id)
    wait_for(lambda: sync_redis.get(keys.cli_group(agent_id)), timeout=90)  # the run is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=60) == 0
    record = sync_redis.hgetall(keys.task(task.id))
    assert record["state"] == "failed" and record["attempts"] == "1", record
    assert record["result"].startswith("failed after 1 attempt(s):"), record
    assert "ended with its worker" in json.loads(record["attempt_errors"])[-1], record
    assert executions(tmp_path) == []  # not run again (the killed run's CLI was killed by its successor)
    assert sync_redis.llen(keys.backlog) == 0 and sync_redis.llen(keys.processing(agent_id)) == 0
    if streams:
        assert await TownStore(aredis, town_name).docket.pending_count() == 0
    assert "current_task" not in agent_hash(sync_redis, town_name, agent_id)


@pytest.mark.parametrize("streams", [False, True], ids=["lists", "streams"])
async def test_shared_work_left_over_by_a_killed_worker_is_still_retried(
        tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, sync_redis: redis.Redis,
        streams: bool) -> None:
    # The first run hangs and its worker is SIGKILLed: the next life of the worker finds the task as a
    # leftover (lists: in its processing list; streams: its pending docket entry). It is still shared
    # work, so its failed runs are retried up to max_attempts, not failed at once as a direct one.
    fake_town(tmp_path, town_name, redis_url, streams=streams, idle_timeout=3, visibility=2,
              agent_extra="max_attempts = 3\nfailure_breaker = { failures = 0 }")
    keys = TownKeys(town_name)
    task = await add_shared(aredis, town_name, "FAIL SLEEP_ONCE=60", streams=streams)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    proc = start_worker(tmp_path, "w1", agent_id)
    wait_for(lambda: sync_redis.get(keys.cli_group(agent_id)), timeout=90)  # the first run is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert sync_redis.hget(keys.task(task.id), "attempts") == "1"
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=60) == 0
    record = sync_redis.hgetall(keys.task(task.id))
    assert record["state"] == "failed" and record["attempts"] == "3", record
    assert record["result"].startswith("failed after 3 attempt(s):"), record
    reasons = json.loads(record["attempt_errors"])
    assert [r.split(":")[0] for r in reasons] == ["attempt 2", "attempt 3"]  # the killed run left no reason
    assert [t for t, _ in executions(tmp_path)] == [task.id, task.id]
    assert sync_redis.llen(keys.backlog) == 0 and sync_redis.llen(keys.processing(agent_id)) == 0
    server = TownhallProcess(tmp_path).start(timeout=90)  # the REST task view shows the runs counted
    try:
        view = httpx.get(f"{server.url}/v1/tasks/{task.id}", timeout=20)
        assert view.status_code == 200 and view.json()["attempts"] == 3, view.text
    finally:
        server.stop()


# ---- item 4: per-task time limit ----------------------------------------------------------------------
def test_a_run_past_its_time_limit_is_killed_and_fails(tmp_path: Path, town_name: str, redis_url: str,
                                                       sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=2, agent_extra="task_timeout_secs = 1")
    keys = TownKeys(town_name)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    hung = Task.new("SLEEP=60", state=TaskState.ASSIGNED, assigned_to=agent_id)
    slow = Task.new("SLEEP=2", state=TaskState.ASSIGNED, assigned_to=agent_id)
    assign_task(sync_redis, keys, hung, agent_id)
    assign_task(sync_redis, keys, slow, agent_id, timeout_secs="30")  # its own limit overrides the default
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=60) == 0
    assert sync_redis.hget(keys.task(hung.id), "state") == "failed"
    assert sync_redis.hget(keys.task(hung.id), "result").startswith("timed out after 1 s")
    assert sync_redis.hget(keys.task(slow.id), "state") == "completed"
    assert [t for t, _ in executions(tmp_path)] == [slow.id]  # the hung CLI never got to write its marker


# ---- item 5: one run, one log, one process ------------------------------------------------------------
def test_each_run_has_its_own_log_and_result(tmp_path: Path, town_name: str, redis_url: str,
                                             sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=1)
    keys = TownKeys(town_name)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    tasks = [Task.new(f"job {n}", state=TaskState.ASSIGNED, assigned_to=agent_id) for n in range(3)]
    assign_task(sync_redis, keys, tasks[0], agent_id)
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=30) == 0
    for task in tasks[1:]:  # a new life of the worker (its rounds start again)
        assign_task(sync_redis, keys, task, agent_id)
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=30) == 0
    for task in tasks:
        result = sync_redis.hget(keys.task(task.id), "result")
        assert result.strip() == f"did {task.id}"
        assert (tmp_path / ".tt" / "logs" / "w1" / f"{task.id}.1.log").read_text().strip() == f"did {task.id}"


def test_a_restarted_worker_kills_the_orphaned_cli_first(tmp_path: Path, town_name: str, redis_url: str,
                                                         sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=2)
    keys = TownKeys(town_name)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    task = Task.new("SLEEP_ONCE=60", state=TaskState.ASSIGNED, assigned_to=agent_id)
    assign_task(sync_redis, keys, task, agent_id)
    proc = start_worker(tmp_path, "w1", agent_id)
    group = str(wait_for(lambda: sync_redis.get(keys.cli_group(agent_id))))
    pgid = int(group.rsplit(":", 1)[1])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert _alive(pgid)  # the orphan: its worker is gone
    assert start_worker(tmp_path, "w1", agent_id).wait(timeout=60) == 0
    assert not _alive(pgid)
    assert sync_redis.hget(keys.task(task.id), "state") == "completed"
    assert executions(tmp_path) == [(task.id, agent_id)]  # the orphan never finished: one run counted
    assert "killed the CLI (process group" in _worker_log(tmp_path, "w1")
    assert not sync_redis.exists(keys.cli_group(agent_id))
    assert sync_redis.hget(keys.task(task.id), "result").strip() == f"did {task.id}"
    assert (tmp_path / ".tt" / "logs" / "w1" / f"{task.id}.2.log").exists()  # the SIGKILLed run was #1


# ---- item 7: records written by others ----------------------------------------------------------------
def test_an_agent_only_upstream_wrote_is_found_by_name_and_reused(tmp_path: Path, town_name: str, redis_url: str,
                                                                 sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=1)
    keys = TownKeys(town_name)
    agent_id = seed_agent(sync_redis, town_name, "w1", indexed=False, state="stopped")
    assert start_worker(tmp_path, "w1").wait(timeout=30) == 0
    assert sync_redis.smembers(keys.agent_index) == {agent_id}
    assert sorted(sync_redis.scan_iter(match=keys.agent("*"))) == [keys.agent(agent_id)]
    assert agent_hash(sync_redis, town_name, agent_id)["state"] == "stopped"
    assert any("Worker started" in line for line in sync_redis.lrange(keys.activity(agent_id), 0, -1))


# ---- item 8: the CLI's environment is an allow-list ---------------------------------------------------
def test_the_cli_sees_no_secrets(tmp_path: Path, town_name: str) -> None:
    server = RedisServer(tmp_path / "redis-pw")
    (tmp_path / "redis-pw").mkdir()
    server.start()
    try:
        redis.Redis(unix_socket_path=str(server.socket)).config_set("requirepass", "s3cret-pw")
        url = f"unix://:s3cret-pw@{server.socket}"
        town = tmp_path / "town"
        town.mkdir()
        fake_town(town, town_name, url, idle_timeout=1,
                  agent_extra='pass_env = ["MY_TOOL_*", "REDIS_URL"]',
                  presets="")
        r = redis.Redis(unix_socket_path=str(server.socket), password="s3cret-pw", decode_responses=True)
        keys = TownKeys(town_name)
        agent_id = seed_agent(r, town_name, "w1")
        task = Task.new("PRINTENV", state=TaskState.ASSIGNED, assigned_to=agent_id)
        assign_task(r, keys, task, agent_id)
        env = {"REDIS_URL": url, "TINYTOWN_REDIS_PASSWORD": "s3cret-pw", "ANTHROPIC_API_KEY": "sk-ant-hidden",
               "TOWNHALL_API_KEYS": "th-key-hidden", "MY_TOOL_MODE": "fast", "LC_ALL": "C.UTF-8"}
        assert start_worker(town, "w1", agent_id, env=env).wait(timeout=30) == 0
        result = r.hget(keys.task(task.id), "result")
        assert r.hget(keys.task(task.id), "state") == "completed", result
        printed = dict(line.split("=", 1) for line in result.splitlines() if "=" in line)
        assert "s3cret-pw" not in result and "REDIS_URL" not in printed and "TINYTOWN_REDIS_PASSWORD" not in printed
        assert "sk-ant-hidden" not in result and "th-key-hidden" not in result
        assert printed["MY_TOOL_MODE"] == "fast" and printed["LC_ALL"] == "C.UTF-8"
        assert printed["TINYTOWN_TASK_ID"] == task.id and printed["TINYTOWN_AGENT_ID"] == agent_id
        assert printed["PATH"] == os.environ["PATH"]
    finally:
        server.stop()


# ---- item 9: worker log lines per task ----------------------------------------------------------------
def test_the_worker_log_says_what_happened_to_each_task(tmp_path: Path, town_name: str, redis_url: str,
                                                        sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url)
    keys = TownKeys(town_name)
    agent_id = seed_agent(sync_redis, town_name, "w1")
    ok, bad, long = (Task.new(d, state=TaskState.ASSIGNED, assigned_to=agent_id) for d in ("ok", "FAIL", "SLEEP=60"))
    for task in (ok, bad, long):
        assign_task(sync_redis, keys, task, agent_id)
    proc = start_worker(tmp_path, "w1", agent_id)
    wait_for(lambda: sync_redis.hget(keys.task(long.id), "state") == "running")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    text = _worker_log(tmp_path, "w1")
    assert f"task {ok.id} attempt 1 started (source inbox)" in text
    assert f"task {ok.id} attempt 1 finished: completed, exit 0" in text
    assert f"task {bad.id} attempt 1 finished: failed, exit 3" in text and "exit status 3: boom" in text
    assert f"task {long.id} attempt 1 handed back: terminated by signal" in text
    assert "Stop." not in text
    activity = sync_redis.lrange(keys.activity(agent_id), 0, -1)
    assert any(ok.id in line and "completed" in line for line in activity)
    assert any(long.id in line and "handed back (terminated by signal)" in line for line in activity)
