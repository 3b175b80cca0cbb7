"""``timeout_secs`` in the assign and backlog bodies (issue 11 item 4, request side), over HTTP: bounded,
validated, stored in the task hash as ``timeout_secs`` (what the worker reads), shown by the task view."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import httpx
import pytest
import redis

from townhall.keys import TownKeys
from townhall.testing.process import TownhallProcess
from townhall.testing.towns import write_town


@pytest.fixture
def api(tmp_path: Path, town_name: str, redis_url: str) -> Iterator[httpx.Client]:
    write_town(tmp_path, town_name, redis_url=redis_url)
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=20) as client:
            assert client.post("/v1/agents", json={"name": "w1"}).status_code == 201
            yield client
    finally:
        proc.stop()


def test_timeout_secs_is_stored_on_the_task(api: httpx.Client, sync_redis: redis.Redis, town_name: str) -> None:
    keys = TownKeys(town_name)
    assigned = api.post("/v1/tasks/assign", json={"agent": "w1", "task": "slow", "timeout_secs": 30})
    assert assigned.status_code == 201, assigned.text
    task_id = assigned.json()["task_id"]
    assert sync_redis.hget(keys.task(task_id), "timeout_secs") == "30"
    assert api.get(f"/v1/tasks/{task_id}").json()["timeout_secs"] == 30

    queued = api.post("/v1/backlog", json={"description": "shared", "timeout_secs": 86400})
    assert queued.status_code == 201, queued.text
    assert sync_redis.hget(keys.task(queued.json()["task_id"]), "timeout_secs") == "86400"

    whole = api.post("/v1/backlog", json={"description": "as JSON Schema counts", "timeout_secs": 60.0})
    assert whole.status_code == 201, whole.text  # 60.0 is an integer in JSON Schema
    assert sync_redis.hget(keys.task(whole.json()["task_id"]), "timeout_secs") == "60"

    plain = api.post("/v1/tasks/assign", json={"agent": "w1", "task": "default"}).json()["task_id"]
    assert not sync_redis.hexists(keys.task(plain), "timeout_secs")  # the town's default applies
    assert api.get(f"/v1/tasks/{plain}").json()["timeout_secs"] is None


@pytest.mark.parametrize("value", [0, -5, 86401, 1.5, "60", True])
@pytest.mark.parametrize("path", ["/v1/tasks/assign", "/v1/backlog"])
def test_timeout_secs_out_of_bounds_is_a_422(api: httpx.Client, sync_redis: redis.Redis, town_name: str,
                                              path: str, value: object) -> None:
    body = {"agent": "w1", "task": "x"} if path == "/v1/tasks/assign" else {"description": "x"}
    r = api.post(path, json={**body, "timeout_secs": value})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["timeout_secs"]
    assert sync_redis.hget(TownKeys(town_name).task_counts, "assigned") in (None, "0")
    assert sync_redis.llen(TownKeys(town_name).backlog) == 0
