"""The bare baseline: plain Litestar + uvicorn doing the same Redis round trips as townhall's routes,
with none of townhall's code (no config, plugins, guard, problem handler, store or services).

``python -m bench.baseline REDIS_URL TOWN PORT`` — run by ``python -m bench``.
Round trips per route (checked against townhall by ``bench/rtt.py`` and printed in the table):

* ``GET /health``: none
* ``GET /v1/status``: SMEMBERS agents; pipeline HGETALL each; pipeline LLEN inbox+urgent each (3)
* ``GET /v1/backlog``: LRANGE backlog; pipeline HGETALL each (2)
* ``POST /v1/tasks/assign``: SMEMBERS; pipeline HGETALL each (resolve by name); MULTI hash+index+inbox (3)
* ``POST /v1/backlog``: MULTI hash+index+counts; RPUSH backlog (2)
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


def build(redis_url: str, town: str) -> Litestar:
    r = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=256)
    p = f"tt:{town}:"

    async def agents() -> list[dict[str, str]]:
        ids = list(await r.smembers(p + "idx:agents"))
        async with r.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hgetall(p + f"agent:{agent_id}")
            return [a for a in await pipe.execute() if a]

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, Any]:
        return {"status": "ok", "uptime_secs": int(time.monotonic()), "version": "0"}

    @get("/v1/status")
    async def status() -> dict[str, Any]:
        records = await agents()
        async with r.pipeline(transaction=False) as pipe:
            for a in records:
                pipe.llen(p + f"inbox:{a['id']}")
                pipe.llen(p + f"urgent:{a['id']}")
            lengths = await pipe.execute()
        out = [{**a, "inbox_len": lengths[2 * i], "urgent_len": lengths[2 * i + 1]} for i, a in enumerate(records)]
        return {"name": town, "agent_count": len(out), "agents": out}

    @get("/v1/backlog")
    async def backlog() -> dict[str, Any]:
        ids = await r.lrange(p + "backlog", 0, -1)
        async with r.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hgetall(p + f"task:{task_id}")
            records = await pipe.execute()
        items = [{"task_id": t, "description": rec.get("description", ""),
                  "tags": json.loads(rec.get("tags", "[]"))} for t, rec in zip(ids, records)]
        return {"backlog": items, "count": len(items)}

    def task_hash(task_id: str, description: str, state: str, agent: str | None) -> dict[str, str]:
        now = datetime.now(timezone.utc).isoformat()
        record = {"id": task_id, "description": description, "state": state, "created_at": now,
                  "updated_at": now, "tags": "[]"}
        if agent:
            record["assigned_to"] = agent
        return record

    @post("/v1/tasks/assign")
    async def assign(data: dict[str, Any]) -> dict[str, Any]:
        target = next(a for a in await agents() if a.get("name") == data["agent"])
        task_id = str(uuid.uuid4())
        message = json.dumps({"id": str(uuid.uuid4()), "from": "00000000-0000-0000-0000-000000000001",
                              "to": target["id"], "type": "task_assign", "task_id": task_id,
                              "priority": "normal", "created_at": datetime.now(timezone.utc).isoformat(),
                              "correlation_id": None})
        async with r.pipeline(transaction=True) as pipe:
            pipe.hset(p + f"task:{task_id}", mapping=task_hash(task_id, data["task"], "assigned", target["id"]))
            pipe.sadd(p + "idx:tasks:assigned", task_id)
            pipe.hincrby(p + "stats:tasks", "assigned", 1)
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
            await pipe.execute()
        await r.rpush(p + "backlog", task_id)
        return {"task_id": task_id, "description": data["description"]}

    return Litestar([health, status, backlog, assign, add], logging_config=None)


def main() -> None:
    redis_url, town, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    uvicorn.run(build(redis_url, town), host="127.0.0.1", port=port, loop="uvloop", http="httptools",
                log_config=None, access_log=False, server_header=False)


if __name__ == "__main__":
    main()
