"""The task history (issue 13 item 1): its indexes move with every state change, pages come newest first
with a cursor, filters narrow, records written by others are found after reconcile, and gone ones leave."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.services import TEST_CLI, town_services
from townhall.domain import Task, TaskState
from townhall.domain.timestamps import epoch_ms
from townhall.domain_errors import AgentNotFound, InvalidInput
from townhall.services.history import encode_cursor
from townhall.services.town import TownServices
from townhall.store import Position
from townhall.store.history_lua import HISTORY_LUA
from townhall.store.tasks import task_script_keys
from townhall.testing.process import TownhallProcess, run_cli
from townhall.testing.towns import write_town


@pytest.fixture
async def services(tmp_path: Path, town_name: str, redis_url: str, aredis: aioredis.Redis) -> TownServices:
    return town_services(tmp_path, town_name, redis_url, aredis)


def at(minutes: int) -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)


async def make(services: TownServices, n: int, *, state: TaskState = TaskState.COMPLETED,
               assigned_to: str | None = None, tags: list[str] | None = None, minute: int = 0,
               same_time: bool = False) -> list[Task]:
    made = []
    for i in range(n):
        task = Task.new(f"t{i}", state=state, assigned_to=assigned_to, tags=tags)
        task.created_at = at(minute if same_time else minute + i)
        made.append(await services.store.tasks.create(task))
    return made


async def members(aredis: aioredis.Redis, key: str) -> list[str]:
    return await aredis.zrange(key, 0, -1)


async def all_pages(services: TownServices, **query: object) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await services.history.page(cursor=cursor, **query)  # type: ignore[arg-type]
        pages.append([t.id for t in page.tasks])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_lua_reads_times_as_python_does(aredis: aioredis.Redis, town_name: str) -> None:
    script = aredis.register_script(HISTORY_LUA + "return epoch_ms(ARGV[1])")
    keys = task_script_keys(__import__("townhall.keys", fromlist=["TownKeys"]).TownKeys(town_name), "x")
    for text, moment in [
        ("2026-04-04T18:00:00.123456789Z", datetime(2026, 4, 4, 18, 0, 0, 123000, tzinfo=timezone.utc)),
        ("2026-04-04T18:00:00+00:00", datetime(2026, 4, 4, 18, tzinfo=timezone.utc)),
        ("2024-02-29T23:59:59.999+05:30", datetime(2024, 2, 29, 18, 29, 59, 999000, tzinfo=timezone.utc)),
        ("1999-12-31T20:00:00-04:00", datetime(2000, 1, 1, tzinfo=timezone.utc)),
        ("2100-03-01T00:00:00.5Z", datetime(2100, 3, 1, 0, 0, 0, 500000, tzinfo=timezone.utc)),
    ]:
        assert int(await script(keys=keys, args=[text])) == epoch_ms(moment), text


async def test_every_state_change_moves_the_history(services: TownServices, aredis: aioredis.Redis) -> None:
    k = services.store.keys
    agent = await services.agents.spawn("w1", cli="test-cli", launch=False)
    assigned = (await services.tasks.assign("w1", "do it")).task
    queued = await services.backlog.add("shared", ["red"])
    assert await members(aredis, k.history_state("assigned")) == [assigned.id]
    assert await members(aredis, k.history_state("pending")) == [queued.id]
    assert await members(aredis, k.history_agent(agent.id)) == [assigned.id]
    assert await members(aredis, k.history_tag("red")) == [queued.id]
    score = await aredis.zscore(k.history, assigned.id)
    assert score == epoch_ms(assigned.created_at)

    await services.tasks.start(assigned.id, agent.id)
    assert await members(aredis, k.history_state("running")) == [assigned.id]
    assert await members(aredis, k.history_state("assigned")) == []
    await services.tasks.complete(assigned.id, "ok")
    assert await members(aredis, k.history_state("completed")) == [assigned.id]
    assert await members(aredis, k.history_state("running")) == []
    assert await aredis.zscore(k.history_state("completed"), assigned.id) == score  # the score never moves

    await services.backlog.claim(queued.id, "w1")
    assert sorted(await members(aredis, k.history_agent(agent.id))) == sorted([assigned.id, queued.id])
    await services.tasks.fail(queued.id, "broken")
    assert await members(aredis, k.history_state("failed")) == [queued.id]

    gone = await services.backlog.add("to delete", ["red"])
    await services.backlog.delete(gone.id)
    for key in (k.history, k.history_state("pending"), k.history_tag("red")):
        assert gone.id not in await members(aredis, key)
    in_states = [await members(aredis, k.history_state(s.value)) for s in TaskState]
    assert sorted(i for ids in in_states for i in ids) == sorted(await members(aredis, k.history))


async def test_pages_newest_first_with_ties_and_a_cursor(services: TownServices) -> None:
    made = await make(services, 23) + await make(services, 9, minute=100, same_time=True)
    newest_first = sorted(made, key=lambda t: (t.created_at, t.id), reverse=True)
    pages = await all_pages(services, limit=5)
    assert [i for page in pages for i in page] == [t.id for t in newest_first]
    assert [len(p) for p in pages] == [5] * 6 + [2]
    exact = await all_pages(services, limit=16)  # 32 tasks: two full pages, then the end
    assert [len(p) for p in exact] == [16, 16]

    # A task changing state keeps its place: the next page neither repeats nor skips.
    first = await services.history.page(limit=3)
    await services.tasks.fail(newest_first[5].id, "changed meanwhile")
    rest = await services.history.page(limit=500, cursor=first.next_cursor)
    assert [t.id for t in first.tasks + rest.tasks] == [t.id for t in newest_first]


async def test_filters(services: TownServices, aredis: aioredis.Redis) -> None:
    a = await services.agents.spawn("alpha", cli="test-cli", launch=False)
    b = await services.agents.spawn("beta", cli="test-cli", launch=False)
    mission = "6f2d0d8a-95a5-4c43-a8c4-1e7d8d2a6f10"
    done_a = await make(services, 4, assigned_to=a.id, tags=["x"])
    failed_a = await make(services, 3, state=TaskState.FAILED, assigned_to=a.id, minute=10)
    done_b = await make(services, 2, assigned_to=b.id, tags=[f"mission:{mission}"], minute=20)
    pending = await make(services, 2, state=TaskState.PENDING, tags=["x"], minute=30)

    def ids(tasks: list[Task]) -> set[str]:
        return {t.id for t in tasks}

    async def found(**query: object) -> set[str]:
        return {i for page in await all_pages(services, **query) for i in page}

    assert await found(state="completed") == ids(done_a + done_b)
    assert await found(state="failed,cancelled") == ids(failed_a)
    assert await found(agent="alpha") == ids(done_a + failed_a)
    assert await found(agent=a.id, state="failed") == ids(failed_a)
    assert await found(tag="x") == ids(done_a + pending)
    assert await found(tag="x", state="pending") == ids(pending)
    assert await found(mission=mission) == ids(done_b)
    assert await found(since=at(20)) == ids(done_b + pending)
    assert await found(agent="beta", since=at(21)) == {done_b[1].id}

    # The agent slice remembers every assignee; the filter answers with the current one.
    await services.store.tasks.transition(done_a[0].id, None, patch=__import__(
        "townhall.store", fromlist=["TaskPatch"]).TaskPatch(assigned_to=b.id))
    assert done_a[0].id not in await found(agent="alpha")
    assert done_a[0].id in await found(agent="beta")


async def test_bad_input(services: TownServices) -> None:
    for query, field in [({"state": "done,completed,nope"}, "state"), ({"limit": 0}, "limit"),
                         ({"limit": 501}, "limit"), ({"cursor": "%%%"}, "cursor"),
                         ({"cursor": encode_cursor(Position(1, "x"))}, "cursor"), ({"mission": "m1"}, "mission")]:
        with pytest.raises(InvalidInput) as err:
            await services.history.page(**query)  # type: ignore[arg-type]
        assert err.value.field == field
    with pytest.raises(InvalidInput, match="'done', 'nope'.*pending, assigned, running, completed"):
        await services.history.page(state="done,completed,nope")
    # Exactly the names, as the OpenAPI pattern says (tt tasks --state tidies what a person types).
    for spelled in ["failed, cancelled", "Failed", "failed,", ",failed"]:
        with pytest.raises(InvalidInput, match="lowercase, comma-separated"):
            await services.history.page(state=spelled)
    with pytest.raises(AgentNotFound):
        await services.history.page(agent="nobody")


async def test_records_of_others_and_vanished_records(services: TownServices, aredis: aioredis.Redis) -> None:
    k = services.store.keys
    ours = await make(services, 3)
    upstream = Task.new("written by the original tt", state=TaskState.COMPLETED, tags=["u"])
    upstream.created_at = at(50)
    from townhall.store.codec import task_to_hash
    await aredis.hset(k.task(upstream.id), mapping=task_to_hash(upstream).set)  # no indexes
    await aredis.delete(k.task(ours[0].id))  # gone behind our back (another tool, an expiry)
    await aredis.hset(k.task(ours[1].id), "state", "failed")  # changed behind our back

    page = await services.history.page(state="completed")
    assert [t.id for t in page.tasks] == [ours[2].id]
    assert await members(aredis, k.history_state("completed")) == [ours[2].id]  # repaired on the way
    assert await members(aredis, k.history_state("failed")) == [ours[1].id]
    assert ours[0].id not in await members(aredis, k.history)

    await services.store.reconcile()
    assert [t.id for t in (await services.history.page(state="completed")).tasks] == [upstream.id, ours[2].id]
    assert await members(aredis, k.history_tag("u")) == [upstream.id]
    await aredis.delete(k.task(upstream.id))
    await services.store.reconcile()
    assert await members(aredis, k.history_tag("u")) == []
    assert upstream.id not in await members(aredis, k.history)


def test_http_and_cli(tmp_path: Path, town_name: str, redis_url: str) -> None:
    write_town(tmp_path, town_name, redis_url=redis_url, extra=TEST_CLI)
    proc = TownhallProcess(tmp_path).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as api:
            created = [api.post("/v1/backlog", json={"description": f"job {i}", "tags": ["t"]}).json()["task_id"]
                       for i in range(3)]
            body = api.get("/v1/tasks", params={"state": "pending", "limit": 2}).json()
            assert [t["id"] for t in body["tasks"]] == created[::-1][:2]
            assert body["tasks"][0] == api.get(f"/v1/tasks/{created[2]}").json()
            rest = api.get("/v1/tasks", params={"cursor": body["next_cursor"], "state": "pending"}).json()
            assert [t["id"] for t in rest["tasks"]] == [created[0]] and rest["next_cursor"] is None

            r = api.get("/v1/tasks", params={"state": "pending,bogus"})
            assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
            assert "'bogus'" in r.json()["detail"] and "cancelled" in r.json()["detail"]
            assert r.json()["errors"][0]["field"] == "state"
            for params in ({"limit": 0}, {"limit": 501}, {"limit": "many"}, {"cursor": "not-a-cursor"}, {"cursor": ""},
                           {"since": "yesterday"}, {"since": "0.5"}, {"mission": ""}, {"mission": "abc"}):
                r = api.get("/v1/tasks", params=params)
                assert r.status_code == 422, (params, r.text)
                assert r.json()["errors"][0]["field"] == next(iter(params)), r.text
            assert api.get("/v1/tasks", params={"agent": "nobody"}).status_code == 404
            # Every value the document's patterns admit is served: a cursor names a position, whatever
            # task it names; an empty state list is every state; a tag nobody carries finds nothing.
            anywhere = api.get("/v1/tasks", params={"cursor": "0.00000000-0000-0000-0000-000000000000"})
            assert anywhere.status_code == 200 and anywhere.json() == {"tasks": [], "next_cursor": None}
            assert len(api.get("/v1/tasks", params={"state": ""}).json()["tasks"]) == 3
            assert api.get("/v1/tasks", params={"tag": " \u00e9 "}).json()["tasks"] == []
            assert api.get("/v1/tasks", params={"since": "2000-01-01t00:00:00z"}).json()["tasks"]

            cli = run_cli("--town", str(tmp_path), "tasks", "--state", " Pending", "--limit", "2", "--json",
                          program="tt")
            assert cli.returncode == 0, cli.stderr
            assert httpx.Response(200, content=cli.stdout).json() == body
            bad = run_cli("--town", str(tmp_path), "tasks", "--state", "nope", program="tt")
            assert bad.returncode == 1 and "'nope'" in bad.stderr
    finally:
        proc.stop()
