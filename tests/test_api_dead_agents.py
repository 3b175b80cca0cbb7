"""Dead agents refuse work (issue 11 item 6), over HTTP against a real townhall: assign, claim,
assign-all and reclaim ``to`` a ``Stopped``/``Error`` agent are a 409 naming the state and how to restart
it; with ``?start=true`` (``--start`` in ``tt``) the agent is restarted through the launcher first.
Messages are still accepted."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import redis

from tests.support.workers import executions, fake_town, wait_for
from townhall.keys import TownKeys
from townhall.testing.process import TownhallProcess, run_cli


@pytest.fixture
def api(tmp_path: Path, town_name: str, redis_url: str) -> Iterator[httpx.Client]:
    fake_town(tmp_path, town_name, redis_url)  # launcher none: a restart only changes the record
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=20) as client:
            yield client
    finally:
        proc.stop()


def dead_agent(api: httpx.Client, name: str) -> str:
    spawned = api.post("/v1/agents", json={"name": name})
    assert spawned.status_code == 201, spawned.text
    assert api.post(f"/v1/agents/{name}/kill").status_code == 200
    return spawned.json()["agent_id"]


def agent_state(r: redis.Redis, town: str, agent_id: str) -> str:
    return r.hget(TownKeys(town).agent(agent_id), "state") or ""


@pytest.mark.parametrize("state", ["stopped", "error"])
def test_work_to_a_dead_agent_is_refused_with_how_to_restart_it(api: httpx.Client, sync_redis: redis.Redis,
                                                                 town_name: str, state: str) -> None:
    keys = TownKeys(town_name)
    agent_id = dead_agent(api, "sleepy")
    sync_redis.hset(keys.agent(agent_id), "state", state)
    label = state.capitalize()
    queued = api.post("/v1/backlog", json={"description": "shared"}).json()["task_id"]

    for method_path, body in [("/v1/tasks/assign", {"agent": "sleepy", "task": "do it"}),
                              (f"/v1/backlog/{queued}/claim", {"agent": "sleepy"}),
                              ("/v1/backlog/assign-all", {"agent": "sleepy"}),
                              ("/v1/reclaim", {"to": "sleepy"})]:
        r = api.post(method_path, json=body)
        assert r.status_code == 409, (method_path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        detail = r.json()["detail"]
        assert f"agent 'sleepy' is {label}" in detail
        assert "POST /v1/agents/sleepy/restart" in detail and "?start=true" in detail

    # Nothing was handed over: no task record for the refused assign, the backlog task still queued.
    assert sync_redis.llen(keys.inbox(agent_id)) == 0
    assert sync_redis.lrange(keys.backlog, 0, -1) == [queued]
    assert sync_redis.hget(keys.task_counts, "assigned") in (None, "0")
    assert agent_state(sync_redis, town_name, agent_id) == state

    # Messages are not handed-over work: accepted, they wait in the inbox.
    sent = api.post("/v1/messages/send", json={"to": "sleepy", "message": "when you are back", "kind": "info"})
    assert sent.status_code == 201, sent.text
    assert sync_redis.llen(keys.inbox(agent_id)) == 1


def test_start_true_restarts_then_hands_over(api: httpx.Client, sync_redis: redis.Redis, town_name: str) -> None:
    keys = TownKeys(town_name)
    agent_id = dead_agent(api, "sleepy")
    r = api.post("/v1/tasks/assign?start=true", json={"agent": "sleepy", "task": "do it"})
    assert r.status_code == 201, r.text
    task_id = r.json()["task_id"]
    assert agent_state(sync_redis, town_name, agent_id) == "idle"
    assert "🔄 Restarted" in sync_redis.lrange(keys.activity(agent_id), 0, -1)[0]
    assert sync_redis.hget(keys.task(task_id), "assigned_to") == agent_id
    assert task_id in sync_redis.lindex(keys.inbox(agent_id), 0)

    # A live agent with ?start=true is simply given the work (no second restart).
    queued = api.post("/v1/backlog", json={"description": "shared"}).json()["task_id"]
    claimed = api.post(f"/v1/backlog/{queued}/claim?start=true", json={"agent": "sleepy"})
    assert claimed.status_code == 200, claimed.text
    assert sync_redis.llen(keys.inbox(agent_id)) == 2

    assert api.post("/v1/agents/sleepy/kill").status_code == 200
    api.post("/v1/backlog", json={"description": "more"})
    bulk = api.post("/v1/backlog/assign-all?start=true", json={"agent": "sleepy"})
    assert bulk.status_code == 200 and bulk.json()["assigned"] == 1, bulk.text
    assert agent_state(sync_redis, town_name, agent_id) == "idle"


def test_reclaim_to_a_dead_agent_is_refused_and_start_true_restarts_it(
        api: httpx.Client, sync_redis: redis.Redis, town_name: str) -> None:
    keys = TownKeys(town_name)
    gone = api.post("/v1/agents", json={"name": "gone"}).json()["agent_id"]
    task_id = api.post("/v1/tasks/assign", json={"agent": "gone", "task": "left behind"}).json()["task_id"]
    assert api.post("/v1/agents/gone/kill").status_code == 200
    sleepy = dead_agent(api, "sleepy")

    refused = api.post("/v1/reclaim", json={"to": "sleepy"})
    assert refused.status_code == 409 and "agent 'sleepy' is Stopped" in refused.json()["detail"], refused.text
    assert sync_redis.hget(keys.task(task_id), "assigned_to") == gone  # nothing moved
    assert sync_redis.llen(keys.inbox(gone)) == 1 and sync_redis.llen(keys.inbox(sleepy)) == 0

    moved = api.post("/v1/reclaim?start=true", json={"to": "sleepy"})
    assert moved.status_code == 200 and moved.json()["reclaimed"] == 1, moved.text
    assert moved.json()["destination"] == f"agent:{sleepy}"
    assert agent_state(sync_redis, town_name, sleepy) == "idle"
    assert sync_redis.hget(keys.task(task_id), "assigned_to") == sleepy
    assert task_id in sync_redis.lindex(keys.inbox(sleepy), 0)
    assert sync_redis.llen(keys.inbox(gone)) == 0


def test_start_true_launches_a_real_worker_that_runs_the_task(tmp_path: Path, town_name: str, redis_url: str,
                                                              sync_redis: redis.Redis) -> None:
    keys = TownKeys(town_name)
    fake_town(tmp_path, town_name, redis_url, launcher="local")
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=20) as api:
            agent_id = api.post("/v1/agents", json={"name": "w1"}).json()["agent_id"]
            wait_for(lambda: agent_state(sync_redis, town_name, agent_id) == "idle")
            assert api.post("/v1/agents/w1/kill").status_code == 200
            wait_for(lambda: not sync_redis.exists(keys.worker_alive(agent_id)))  # its worker is gone
            assert api.post("/v1/tasks/assign", json={"agent": "w1", "task": "x"}).status_code == 409
            r = api.post("/v1/tasks/assign?start=true", json={"agent": "w1", "task": "wake up and work"})
            assert r.status_code == 201, r.text
            task_id = r.json()["task_id"]
            wait_for(lambda: sync_redis.hget(keys.task(task_id), "state") == "completed", timeout=40)
            assert (task_id, agent_id) in executions(tmp_path)
            api.post("/v1/agents/w1/kill")
            wait_for(lambda: not sync_redis.exists(keys.worker_alive(agent_id)))
    finally:
        proc.stop(signal.SIGTERM)


def test_tt_start_on_every_command_that_hands_over_work(tmp_path: Path, town_name: str, redis_url: str,
                                                        sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url)

    def tt(*args: str) -> tuple[int, str, str]:
        done = run_cli("--town", str(tmp_path), *args, program="tt")
        return done.returncode, done.stdout, done.stderr

    code, out, _ = tt("spawn", "w1", "--json")
    agent_id = json.loads(out)["agent_id"]
    assert tt("kill", "w1")[0] == 0
    code, _, err = tt("assign", "w1", "do it")
    assert code == 1 and "agent 'w1' is Stopped" in err and "tt assign --start" in err
    code, out, err = tt("assign", "w1", "do it", "--start", "--json")
    assert code == 0, err
    assert json.loads(out)["agent_id"] == agent_id
    assert agent_state(sync_redis, town_name, agent_id) == "idle"

    # tt backlog claim / assign-all and tt reclaim --to: refused for a dead agent, --start restarts it.
    keys = TownKeys(town_name)
    queued = [json.loads(tt("backlog", "add", f"shared {n}", "--json")[1])["task_id"] for n in range(2)]
    for command in (["backlog", "claim", queued[0], "w1"], ["backlog", "assign-all", "w1"]):
        assert tt("kill", "w1")[0] == 0
        code, _, err = tt(*command)
        assert code == 1 and "agent 'w1' is Stopped" in err, (command, err)
        code, out, err = tt(*command, "--start", "--json")
        assert code == 0, (command, err)
        assert agent_state(sync_redis, town_name, agent_id) == "idle"
    assert sync_redis.llen(keys.backlog) == 0
    assert {sync_redis.hget(keys.task(t), "assigned_to") for t in queued} == {agent_id}

    gone = json.loads(tt("spawn", "w2", "--json")[1])["agent_id"]
    left = json.loads(tt("assign", "w2", "left behind", "--json")[1])["task_id"]
    assert tt("kill", "w2")[0] == 0 and tt("kill", "w1")[0] == 0
    code, _, err = tt("reclaim", "--to", "w1")
    assert code == 1 and "agent 'w1' is Stopped" in err
    assert sync_redis.hget(keys.task(left), "assigned_to") == gone
    code, out, err = tt("reclaim", "--to", "w1", "--start", "--json")
    assert code == 0 and json.loads(out)["reclaimed"] == 1, err
    assert sync_redis.hget(keys.task(left), "assigned_to") == agent_id
    assert agent_state(sync_redis, town_name, agent_id) == "idle"
