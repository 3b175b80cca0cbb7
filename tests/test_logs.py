"""Logs over HTTP and ``tt logs`` (issue 13 item 4): a task's run log and an agent's worker log as text,
the worker log followed as it grows, and nothing served from outside the town's log folder whatever a
record or a symlink says. A real townhall process; the run log of a real worker run."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import redis

from tests.support.workers import fake_town, seed_agent, start_worker
from townhall.domain import Task, TaskState
from townhall.keys import TownKeys
from townhall.store.codec import task_to_hash
from townhall.testing.process import TownhallProcess, run_cli

SECRET = "root:x:0:0"  # what /etc/passwd starts with: it must never show up in an answer


@pytest.fixture
def town(tmp_path: Path, town_name: str, redis_url: str) -> Iterator[tuple[Path, httpx.Client]]:
    fake_town(tmp_path, town_name, redis_url, idle_timeout=1, presets="[townhall]\nrequest_timeout_ms = 1000")
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as api:
            yield tmp_path, api
    finally:
        proc.stop()


def raw_task(r: redis.Redis, town: str, **fields: str) -> Task:
    task = Task.new("logged work", state=TaskState.COMPLETED)
    r.hset(TownKeys(town).task(task.id), mapping={**task_to_hash(task).set, **fields})
    return task


def test_a_task_run_log_and_its_attempts(town: tuple[Path, httpx.Client], town_name: str,
                                         sync_redis: redis.Redis) -> None:
    root, api = town
    worker = seed_agent(sync_redis, town_name, "w1")
    task_id = api.post("/v1/backlog", json={"description": "PRINTENV please"}).json()["task_id"]
    assert start_worker(root, "w1", worker).wait(timeout=60) == 0
    r = api.get(f"/v1/tasks/{task_id}/log")
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == (root / ".tt" / "logs" / "w1" / f"{task_id}.1.log").read_text()
    assert f"TINYTOWN_TASK_ID={task_id}" in r.text and r.text.endswith(f"did {task_id}\n")
    assert api.get(f"/v1/tasks/{task_id}/log", params={"tail": 1}).text == f"did {task_id}\n"
    assert api.get(f"/v1/tasks/{task_id}/log", params={"attempt": 1}).text == r.text
    assert api.get(f"/v1/tasks/{task_id}/log", params={"attempt": 2}).status_code == 404

    # A re-queued task has no assignee: its runs are found in whichever agent folder holds them.
    older = root / ".tt" / "logs" / "gone-agent" / f"{task_id}.2.log"
    older.parent.mkdir()
    older.write_text("second attempt\n")
    sync_redis.hdel(TownKeys(town_name).task(task_id), "assigned_to")
    assert api.get(f"/v1/tasks/{task_id}/log").text == "second attempt\n"

    cli = run_cli("--town", str(root), "logs", task_id, "--tail", "1", program="tt")
    assert cli.returncode == 0 and cli.stdout == "second attempt\n", cli.stderr
    cli = run_cli("--town", str(root), "logs", task_id, "--attempt", "1", program="tt")
    assert cli.returncode == 0 and cli.stdout.endswith(f"did {task_id}\n"), cli.stderr


def test_bad_input_and_unknown_things(town: tuple[Path, httpx.Client], town_name: str,
                                      sync_redis: redis.Redis) -> None:
    root, api = town
    task = raw_task(sync_redis, town_name)
    (root / ".tt" / "logs" / "w1.log").write_text("x\n")
    seed_agent(sync_redis, town_name, "w1")
    for path, params in [(f"/v1/tasks/{task.id}/log", {"tail": -1}), (f"/v1/tasks/{task.id}/log", {"tail": 10001}),
                         (f"/v1/tasks/{task.id}/log", {"attempt": 0}), ("/v1/agents/w1/log", {"tail": "x"}),
                         ("/v1/agents/w1/log", {"tail": 10001}), ("/v1/agents/w1/log", {"follow": "maybe"})]:
        r = api.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["errors"][0]["field"] == next(iter(params)), r.text
    assert api.get("/v1/tasks/nope/log").status_code == 422
    assert api.get("/v1/tasks/6f2d0d8a-95a5-4c43-a8c4-1e7d8d2a6f10/log").status_code == 404
    missing = api.get(f"/v1/tasks/{task.id}/log")  # a task that never ran here
    assert missing.status_code == 404 and "no run log" in missing.json()["detail"]
    assert api.get("/v1/agents/nobody/log").status_code == 404
    assert api.get("/v1/agents/supervisor/log").status_code == 404
    cli = run_cli("--town", str(root), "logs", "nobody", program="tt")
    assert cli.returncode == 1 and "nobody" in cli.stderr


def test_nothing_outside_the_log_folder_is_served(town: tuple[Path, httpx.Client], town_name: str,
                                                  sync_redis: redis.Redis) -> None:
    root, api = town
    logs = root / ".tt" / "logs"
    # Records written by someone else, naming paths out of the folder.
    sneaky = seed_agent(sync_redis, town_name, "../../../../../../etc/passwd")
    by_record = raw_task(sync_redis, town_name, assigned_to=sneaky)
    dotted = raw_task(sync_redis, town_name, assigned_to="../../../../../../etc")
    # Symlinks inside the folder that point out of it.
    seed_agent(sync_redis, town_name, "linked")
    (logs / "linked.log").symlink_to("/etc/passwd")
    runner = seed_agent(sync_redis, town_name, "runner")
    linked_run = raw_task(sync_redis, town_name, assigned_to=runner, attempts="1")
    (logs / "runner").mkdir()
    (logs / "runner" / f"{linked_run.id}.1.log").symlink_to("/etc/passwd")
    seed_agent(sync_redis, town_name, "dirlinked")
    (logs / "elsewhere").symlink_to("/etc", target_is_directory=True)

    for path in (f"/v1/agents/{sneaky}/log", f"/v1/tasks/{by_record.id}/log", f"/v1/tasks/{dotted.id}/log",
                 "/v1/agents/linked/log", f"/v1/tasks/{linked_run.id}/log", "/v1/agents/linked/log?follow=true"):
        r = api.get(path)
        assert r.status_code == 404, (path, r.text)
        assert SECRET not in r.text
    cli = run_cli("--town", str(root), "logs", "linked", program="tt")
    assert cli.returncode == 1 and SECRET not in cli.stdout

    # A symlink that stays inside the folder is fine.
    (logs / "real.log").write_text("inside\n")
    seed_agent(sync_redis, town_name, "alias")
    (logs / "alias.log").symlink_to(logs / "real.log")
    assert api.get("/v1/agents/alias/log").text == "inside\n"


def test_the_worker_log_tail_and_follow(town: tuple[Path, httpx.Client], town_name: str,
                                        sync_redis: redis.Redis) -> None:
    root, api = town
    seed_agent(sync_redis, town_name, "w1")
    path = root / ".tt" / "logs" / "w1.log"
    path.write_text("".join(f"line {n}\n" for n in range(1, 6)))
    assert api.get("/v1/agents/w1/log").text == path.read_text()
    assert api.get("/v1/agents/w1/log", params={"tail": 2}).text == "line 4\nline 5\n"
    assert api.get("/v1/agents/w1/log", params={"tail": 0}).text == ""
    assert api.get("/v1/agents/w1/log", params={"tail": 99}).text == path.read_text()

    with api.stream("GET", "/v1/agents/w1/log", params={"tail": 1, "follow": "true"}) as stream:
        assert stream.status_code == 200
        chunks = stream.iter_raw()
        assert next(chunks) == b"line 5\n"
        with path.open("a") as log:
            log.write("line 6\n")
        assert next(chunks) == b"line 6\n"
        time.sleep(1.5)  # longer than request_timeout_ms (1 s here): a followed log has no deadline
        os.truncate(path, 0)  # a new life of the worker may start the file again
        with path.open("a") as log:
            log.write("fresh start\n")
        received = b""
        while b"fresh start\n" not in received:
            received += next(chunks)
    # The client went away: townhall goes on serving.
    assert api.get("/v1/agents/w1/log", params={"tail": 1}).text == "fresh start\n"


def test_sigterm_ends_a_followed_log(tmp_path: Path, town_name: str, redis_url: str,
                                     sync_redis: redis.Redis) -> None:
    """uvicorn's graceful shutdown waits for open responses, and a followed log never ends by itself:
    shutdown ends it first, so townhall stops promptly and cleanly."""
    fake_town(tmp_path, town_name, redis_url)
    proc = TownhallProcess(tmp_path).start()
    seed_agent(sync_redis, town_name, "w1")
    (tmp_path / ".tt" / "logs" / "w1.log").write_text("only line\n")
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as api, \
                api.stream("GET", "/v1/agents/w1/log", params={"follow": "true"}) as stream:
            chunks = stream.iter_raw()
            assert next(chunks) == b"only line\n"
            assert proc.process is not None
            proc.process.send_signal(signal.SIGTERM)
            assert b"".join(chunks) == b""  # the stream ends: the server closed it
        assert proc.process.wait(timeout=30) == 0
    finally:
        proc.stop()
    assert "timeout graceful shutdown exceeded" not in proc.output()
