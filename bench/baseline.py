"""The bare baseline: plain Litestar + uvicorn answering townhall's benchmarked routes with the same
Redis round trips, written as a straightforward app would be, with none of townhall's code (no config,
plugins, middleware, guard, problem handler, request ids, store or services; dicts in, dicts out).

``python -m bench.baseline REDIS_URL TOWN PORT`` — run by ``python -m bench``.
What each route does (the round trips are counted for both apps by ``bench/rtt.py`` and printed in the
table, which checks they are equal):

* ``GET /health``: nothing (0)
* ``GET /v1/status``: one Lua script: SMEMBERS agents; per agent HGETALL, LLEN inbox and urgent, and
  HGETALL of its current task if it has one (1)
* ``GET /v1/agents``: the same script without the lengths (1)
* ``GET /v1/backlog``: one Lua script: LRANGE backlog; HGETALL each (1)
* ``POST /v1/tasks/assign``: the agents script, pick the agent by name in Python; MULTI task hash +
  state index + counter + the history indexes (by time, id, state, agent) + the two town events
  (created, assigned) + inbox message (2)
* ``POST /v1/backlog``: MULTI task hash + state index + counter + the history indexes (by time, id,
  state) + the town event (created) + backlog entry + a wake token for workers (RPUSH + LTRIM) (1)

The writes keep what townhall's writes keep (the task history and the town event stream are features
of the API: ``GET /v1/tasks``, ``GET /v1/events``), so both servers leave Redis the same work; Redis
shares the servers' core in the bench.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from litestar import Litestar, get, post

AGENTS_SCRIPT = """
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local agent = redis.call('HGETALL', ARGV[1] .. 'agent:' .. id)
  if #agent > 0 then
    local row = {agent, 0, 0, {}}
    if ARGV[2] == '1' then
      row[2] = redis.call('LLEN', ARGV[1] .. 'inbox:' .. id)
      row[3] = redis.call('LLEN', ARGV[1] .. 'urgent:' .. id)
    end
    for i = 1, #agent, 2 do
      if agent[i] == 'current_task' then row[4] = redis.call('HGETALL', ARGV[1] .. 'task:' .. agent[i + 1]) end
    end
    out[#out + 1] = row
  end
end
return out
"""

BACKLOG_SCRIPT = """
local out = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = {id, redis.call('HGETALL', ARGV[1] .. 'task:' .. id)}
end
return out
"""


def pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2]))


def build(redis_url: str, town: str) -> Litestar:
    r = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=256)
    p = f"tt:{town}:"
    agents_script = r.register_script(AGENTS_SCRIPT)
    backlog_script = r.register_script(BACKLOG_SCRIPT)

    async def agents(lengths: bool) -> list[dict[str, Any]]:
        rows = await agents_script(keys=[p + "idx:agents"], args=[p, "1" if lengths else "0"])
        out = []
        for agent, inbox, urgent, task in rows:
            record: dict[str, Any] = pairs(agent)
            if lengths:
                record.update(inbox_len=inbox, urgent_len=urgent)
            record["current_task"] = pairs(task) if task else None
            out.append(record)
        return sorted(out, key=lambda a: (a.get("created_at", ""), a["id"]))

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, Any]:
        return {"status": "ok", "uptime_secs": int(time.monotonic()), "version": "0"}

    @get("/v1/status")
    async def status() -> dict[str, Any]:
        records = await agents(lengths=True)
        return {"name": town, "agent_count": len(records), "agents": records}

    @get("/v1/agents")
    async def agent_list() -> dict[str, Any]:
        records = await agents(lengths=False)
        return {"agents": records, "count": len(records)}

    @get("/v1/backlog")
    async def backlog() -> dict[str, Any]:
        rows = await backlog_script(keys=[p + "backlog"], args=[p])
        items = []
        for task_id, flat in rows:
            rec = pairs(flat)
            items.append({"task_id": task_id, "description": rec.get("description", ""),
                          "tags": json.loads(rec.get("tags", "[]"))})
        return {"backlog": items, "count": len(items)}

    def index_and_announce(pipe: Any, task_id: str, state: str, agent: str | None) -> None:
        """The history indexes and town events of a new task, as townhall keeps them."""
        score = int(time.time() * 1000)
        pipe.zadd(p + "idx:history", {task_id: score})
        pipe.zadd(p + "idx:tasks:ids", {task_id: 0})
        pipe.zadd(p + f"idx:history:state:{state}", {task_id: score})
        if agent:
            pipe.zadd(p + f"idx:history:agent:{agent}", {task_id: score})
        now = datetime.now(timezone.utc).isoformat()
        for kind in ("task_created", "task_assigned") if agent else ("task_created",):
            event = {"event_type": kind, "task_id": task_id, "new_state": state, "agent_id": agent,
                     "message": f"task {task_id}: new -> {state}", "timestamp": now}
            pipe.xadd(p + "events", {"event_type": kind, "data": json.dumps(event)}, maxlen=10000,
                      approximate=True)

    def task_hash(task_id: str, description: str, state: str, agent: str | None) -> dict[str, str]:
        now = datetime.now(timezone.utc).isoformat()
        record = {"id": task_id, "description": description, "state": state, "created_at": now,
                  "updated_at": now, "tags": "[]"}
        if agent:
            record["assigned_to"] = agent
        return record

    @post("/v1/tasks/assign")
    async def assign(data: dict[str, Any]) -> dict[str, Any]:
        target = next(a for a in await agents(lengths=False) if a.get("name") == data["agent"])
        task_id = str(uuid.uuid4())
        message = json.dumps({"id": str(uuid.uuid4()), "from": "00000000-0000-0000-0000-000000000001",
                              "to": target["id"], "type": "task_assign", "task_id": task_id,
                              "priority": "normal", "created_at": datetime.now(timezone.utc).isoformat(),
                              "correlation_id": None})
        async with r.pipeline(transaction=True) as pipe:
            pipe.hset(p + f"task:{task_id}", mapping=task_hash(task_id, data["task"], "assigned", target["id"]))
            pipe.sadd(p + "idx:tasks:assigned", task_id)
            pipe.hincrby(p + "stats:tasks", "assigned", 1)
            index_and_announce(pipe, task_id, "assigned", target["id"])
            pipe.rpush(p + f"inbox:{target['id']}", message)
            await pipe.execute()
        return {"task_id": task_id, "agent_id": target["id"], "agent_name": data["agent"]}

    @post("/v1/backlog")
    async def add(data: dict[str, Any]) -> dict[str, Any]:
        task_id = str(uuid.uuid4())
        async with r.pipeline(transaction=True) as pipe:
            pipe.hset(p + f"task:{task_id}", mapping=task_hash(task_id, data["description"], "pending", None))
            pipe.sadd(p + "idx:tasks:pending", task_id)
            pipe.hincrby(p + "stats:tasks", "pending", 1)
            index_and_announce(pipe, task_id, "pending", None)
            pipe.rpush(p + "backlog", task_id)
            pipe.rpush(p + "wake:shared", "1")
            pipe.ltrim(p + "wake:shared", -1000, -1)
            await pipe.execute()
        return {"task_id": task_id, "description": data["description"]}

    return Litestar([health, status, agent_list, backlog, assign, add], logging_config=None)


def main() -> None:
    redis_url, town, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    uvicorn.run(build(redis_url, town), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_config=None, access_log=False, server_header=False)


if __name__ == "__main__":
    main()
