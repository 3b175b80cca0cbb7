"""Issue 17 item 9: what the docs promise is reachable. Pause/resume/close (the original's interrupt,
resume and close) over REST and ``tt``; ``tt send --kind shutdown|status_request`` reaching a real
worker; ``tt orphans``."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import redis

from tests.support.workers import fake_town, start_worker, wait_for
from townhall.domain import AgentState, TaskState
from townhall.keys import TownKeys
from townhall.testing.inprocess import app_client
from townhall.testing.process import run_cli
from townhall.testing.seed import TownSeed


def tt(town: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = run_cli("--town", str(town), *args, "--json", program="tt")
    assert result.returncode == 0, (args, result.stderr)
    return json.loads(result.stdout)


async def test_interrupt_resume_close_over_rest(town_dir: Path, seed: TownSeed, town_name: str,
                                                sync_redis: redis.Redis) -> None:
    keys = TownKeys(town_name)
    agent = await seed.agent("w1", AgentState.IDLE)
    dead = await seed.agent("gone", AgentState.STOPPED)
    async with app_client(town_dir) as client:
        paused = await client.post("/v1/agents/w1/interrupt")
        assert paused.json() == {"status": "paused", "agent": "w1", "agent_id": agent.id}
        assert sync_redis.hget(keys.agent(agent.id), "state") == "paused"
        assert (await client.post("/v1/agents/w1/interrupt")).status_code == 409  # already paused
        sync_redis.set(keys.stop(agent.id), "1")
        resumed = await client.post("/v1/agents/w1/resume")
        assert resumed.status_code == 200 and resumed.json()["status"] == "resumed"
        assert sync_redis.hget(keys.agent(agent.id), "state") == "idle"
        assert not sync_redis.exists(keys.stop(agent.id))  # resume clears the stop flag, as upstream
        again = await client.post("/v1/agents/w1/resume")
        assert again.status_code == 409 and "is Idle and cannot be resumed" in again.json()["detail"]
        closing = await client.post("/v1/agents/w1/close")
        assert closing.json()["status"] == "closing"
        assert sync_redis.hget(keys.agent(agent.id), "state") == "draining"
        assert sync_redis.get(keys.stop(agent.id)) == "1"
        for action in ("interrupt", "close"):
            refused = await client.post(f"/v1/agents/{dead.name}/{action}")
            assert refused.status_code == 409, action  # a Stopped agent has no worker to pause or close
        assert (await client.post("/v1/agents/supervisor/interrupt")).status_code == 409
        assert (await client.post("/v1/agents/nobody/resume")).status_code == 404
    activity = sync_redis.lrange(keys.activity(agent.id), 0, -1)
    assert activity[:3] == ["🔻 Closing (draining then stop)", "▶️ Resumed", "⏸️ Interrupted (paused)"]
    events = [msgspec.json.decode(fields["data"]) for _, fields in sync_redis.xrange(keys.events)]
    # The original's event types, as its tools write them for these actions ...
    original = [e for e in events if e["event_type"] in ("agent_interrupted", "agent_resumed", "agent_stopped")]
    assert [(e["event_type"], e["old_state"], e["new_state"]) for e in original] == [
        ("agent_interrupted", "idle", "paused"), ("agent_resumed", "paused", "idle"),
        ("agent_stopped", "idle", "draining")]
    assert all(e["agent_id"] == agent.id for e in original)
    # ... and townhall's own agent_state_changed, written in the same step as each change (docs/events.md).
    changed = [(e["old_state"], e["new_state"]) for e in events
               if e["event_type"] == "agent_state_changed" and e["agent_id"] == agent.id]
    assert changed[-3:] == [("idle", "paused"), ("paused", "idle"), ("idle", "draining")]


def test_a_real_worker_obeys_close_shutdown_and_answers_status_requests(tmp_path: Path, town_name: str,
                                                                        redis_url: str,
                                                                        sync_redis: redis.Redis) -> None:
    keys = TownKeys(town_name)
    fake_town(tmp_path, town_name, redis_url)
    asker = tt(tmp_path, "spawn", "asker")["agent_id"]  # launcher none: a mailbox without a worker
    workers = {name: start_worker(tmp_path, name) for name in ("w1", "w2", "w3")}

    def states() -> dict[str, str]:
        records = (sync_redis.hgetall(keys.agent(i)) for i in sync_redis.smembers(keys.agent_index))
        return {r["name"]: r["state"] for r in records if r}

    wait_for(lambda: all(states().get(name) == "idle" for name in workers), timeout=60)

    sent = tt(tmp_path, "send", "w3", "", "--kind", "status_request", "--from", "asker")
    reply = wait_for(lambda: [json.loads(m) for m in sync_redis.lrange(keys.inbox(asker), 0, -1)
                              if json.loads(m)["type"] == "status_response"], timeout=60)
    assert reply[0]["correlation_id"] == sent["message_id"] and reply[0]["state"] in ("Idle", "Working")

    assert tt(tmp_path, "close", "w1")["status"] == "closing"
    tt(tmp_path, "send", "w2", "", "--kind", "shutdown")
    for name in ("w1", "w2"):
        assert workers[name].wait(timeout=60) == 0, name
    now = states()
    assert now["w1"] == "stopped" and now["w2"] == "stopped" and now["w3"] == "idle"

    assert tt(tmp_path, "interrupt", "w3")["status"] == "paused"
    assert tt(tmp_path, "resume", "w3")["status"] == "resumed"
    tt(tmp_path, "kill", "w3")
    assert workers["w3"].wait(timeout=60) == 0


async def test_tt_orphans_lists_and_acts(town_dir: Path, seed: TownSeed) -> None:
    dead = await seed.agent("dead", AgentState.STOPPED)
    task = await seed.task(TaskState.ASSIGNED, "left behind", assigned_to=dead.id)
    listed = tt(town_dir, "orphans")
    assert listed["action"] == "list" and [o["task_id"] for o in listed["orphans"]] == [task.id]
    async with app_client(town_dir) as client:
        assert (await client.post("/v1/reclaim/orphan-tasks")).json() == listed
    requeued = tt(town_dir, "orphans", "--action", "to_backlog")
    assert requeued["action"] == "to_backlog" and requeued["count"] == 1
    assert [t["task_id"] for t in tt(town_dir, "backlog", "list")["backlog"]] == [task.id]
    assert tt(town_dir, "orphans")["count"] == 0
