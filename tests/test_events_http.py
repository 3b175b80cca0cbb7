"""``GET /v1/events`` against real townhall processes (issue 13 item 3): filters, resumption with
``Last-Event-ID`` across a restart, heartbeats, auth, CORS, bad input, a client that stops reading, and
SIGTERM with streams open."""

from __future__ import annotations

import asyncio
import signal
import socket
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Callable, Iterator

import httpx
import pytest

from tests.support.served import serve
from townhall.auth import Scope
from townhall.config import load_town
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.testing.process import TownhallProcess
from townhall.testing.sse import SseMessage, next_event, read_sse, until_comment
from townhall_auth_apikey.testing import api_keys_toml, make_key

TIMEOUT = 15.0



@asynccontextmanager
async def subscribe(client: httpx.AsyncClient, headers: dict[str, str] | None = None,
                    **params: str) -> AsyncIterator[AsyncIterator[SseMessage]]:
    """An open stream, past its ``: subscribed`` line (so what happens next is in it)."""
    async with client.stream("GET", "/v1/events", params=params, headers=headers or {}) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = read_sse(response)
        await until_comment(messages, "subscribed")
        yield messages


async def read_until(messages: AsyncIterator[SseMessage], last: Callable[[SseMessage], bool]) -> list[SseMessage]:
    """Events (comments skipped) up to and including the first one ``last`` accepts."""
    got: list[SseMessage] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            message = await next_event(messages)
            got.append(message)
            if last(message):
                return got


def of_tasks(messages: list[SseMessage]) -> list[tuple[str | None, str | None]]:
    """(type, task) of the task and message events (the scaling watch may add its own at any time)."""
    return [(m.event, m.json().get("task_id")) for m in messages if m.event != "scaling_recommendation_changed"]


async def test_filters_pick_their_events(townhall: TownhallProcess) -> None:
    async with httpx.AsyncClient(base_url=townhall.url, timeout=TIMEOUT) as client:
        w1 = (await client.post("/v1/agents", json={"name": "w1"})).json()["agent_id"]
        await client.post("/v1/agents", json={"name": "w2"})
        async with subscribe(client) as everything, subscribe(client, agent="w1") as of_w1, \
                subscribe(client, types="task_completed,message_sent") as finished:
            t1 = (await client.post("/v1/tasks/assign", json={"agent": "w1", "task": "one"})).json()["task_id"]
            t2 = (await client.post("/v1/tasks/assign", json={"agent": "w2", "task": "two"})).json()["task_id"]
            assert (await client.post(f"/v1/tasks/{t1}/complete", json={"result": "ok"})).status_code == 200
            assert (await client.post("/v1/messages/send", json={"to": "w2", "message": "hi"})).status_code == 201

            def is_message(m: SseMessage) -> bool:
                return m.event == "message_sent"

            all_events = await read_until(everything, is_message)
            assert of_tasks(all_events) == [("task_created", t1), ("task_assigned", t1), ("task_created", t2),
                                            ("task_assigned", t2), ("task_completed", t1), ("message_sent", None)]
            first = all_events[0]
            body = first.json()
            assert body["id"] == first.id and body["event_type"] == first.event == "task_created"
            assert body["agent_id"] == w1 and body["new_state"] == "assigned" and body["timestamp"]

            assert of_tasks(await read_until(of_w1, lambda m: m.event == "task_completed")) == [
                ("task_created", t1), ("task_assigned", t1), ("task_completed", t1)]
            assert of_tasks(await read_until(finished, is_message)) == [("task_completed", t1), ("message_sent", None)]

        # A task's whole history, from the start of the stream, then live.
        async with subscribe(client, {"Last-Event-ID": "0-0"}, task=t1) as history:
            assert of_tasks(await read_until(history, lambda m: m.event == "task_completed")) == [
                ("task_created", t1), ("task_assigned", t1), ("task_completed", t1)]


async def test_resuming_with_last_event_id_across_a_restart(town_dir: Path, procs: list[TownhallProcess],
                                                            aredis, town_name: str) -> None:
    services = build_services(load_town(town_dir), aredis, load_plugins().registry)
    first = serve(town_dir, procs)
    async with httpx.AsyncClient(base_url=first.url, timeout=TIMEOUT) as client:
        await client.post("/v1/agents", json={"name": "w1"})
        async with subscribe(client) as live:
            for i in range(3):
                await client.post("/v1/tasks/assign", json={"agent": "w1", "task": f"before {i}"})
            received: list[SseMessage] = []
            while len([m for m in received if m.event == "task_assigned"]) < 2:
                received.append(await next_event(live))
            # The client got this far, then lost its connection: townhall stops with the stream open.
            last_seen = received[-1].id
            assert first.stop() == 0
    assert "timeout graceful shutdown exceeded" not in first.output()

    for i in range(2):  # while no townhall runs: events written by a worker or the CLI
        await services.tasks.assign("w1", f"while down {i}")

    second = serve(town_dir, procs)
    async with httpx.AsyncClient(base_url=second.url, timeout=TIMEOUT) as client:
        async with subscribe(client, {"Last-Event-ID": last_seen}) as resumed:
            after = (await client.post("/v1/tasks/assign", json={"agent": "w1", "task": "after"})).json()["task_id"]
            got = await read_until(resumed, lambda m: m.event == "task_assigned" and m.json()["task_id"] == after)
    stored = [entry_id for entry_id, _ in await aredis.xrange(f"tt:{town_name}:events", min=f"({last_seen}")]
    ids = [m.id for m in got]
    assert ids == stored[:len(ids)]  # in order, no gap
    assert len(set(ids)) == len(ids)  # no duplicate
    descriptions = [(await services.tasks.get(m.json()["task_id"])).description
                    for m in got if m.event == "task_assigned"]
    assert descriptions == ["before 2", "while down 0", "while down 1", "after"]


# --- one api_key town for the edge cases: quick heartbeats, a small subscriber buffer, CORS ---------

READER = make_key("dashboard", Scope.TOWN_READ)
WRITER = make_key("ci", Scope.TOWN_WRITE)
ORIGIN = "https://ops.example.com"
EDGE_CONFIG = api_keys_toml([READER, WRITER]) + f"""
[townhall.events]
heartbeat_secs = 0.2
subscriber_buffer = 20
[townhall.cors]
allow_origins = ["{ORIGIN}"]
"""


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, redis_server) -> Iterator[TownhallProcess]:
    from townhall.testing.towns import write_town

    if not redis_server.running:
        redis_server.start()
    root = tmp_path_factory.mktemp("edge-town")
    write_town(root, f"edge{uuid.uuid4().hex[:8]}", redis_url=redis_server.url, extra=EDGE_CONFIG)
    proc = TownhallProcess(root).start()
    yield proc
    proc.stop()


async def test_heartbeats_keep_an_idle_stream_open(edge: TownhallProcess) -> None:
    async with httpx.AsyncClient(base_url=edge.url, timeout=TIMEOUT) as client:
        async with subscribe(client, READER.bearer(), types="task_failed") as idle:
            async with asyncio.timeout(TIMEOUT):
                assert [(await anext(idle)).comment for _ in range(3)] == ["heartbeat"] * 3


async def test_scope_town_read_with_either_header(edge: TownhallProcess) -> None:
    async with httpx.AsyncClient(base_url=edge.url, timeout=TIMEOUT) as client:
        missing = await client.get("/v1/events")
        assert missing.status_code == 401 and missing.headers["content-type"] == "application/problem+json"
        wrong = await client.get("/v1/events", headers=WRITER.bearer())
        assert wrong.status_code == 403 and "town.read" in wrong.json()["detail"]
        async with subscribe(client, READER.bearer()):
            pass
        async with subscribe(client, {"X-API-Key": READER.key}):
            pass


async def test_through_the_cors_allow_list(edge: TownhallProcess) -> None:
    async with httpx.AsyncClient(base_url=edge.url, timeout=TIMEOUT) as client:
        preflight = await client.options("/v1/events", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, last-event-id"})
        assert preflight.status_code == 204
        allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "last-event-id", "x-api-key"} <= allowed
        async with client.stream("GET", "/v1/events", headers={"Origin": ORIGIN, **READER.bearer()}) as response:
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == ORIGIN
            await until_comment(read_sse(response), "subscribed")
        stranger = await client.options("/v1/events", headers={"Origin": "https://evil.example",
                                                               "Access-Control-Request-Method": "GET"})
        assert stranger.status_code == 400


@pytest.mark.parametrize(("params", "headers", "status", "field", "named"), [
    ({"types": "task_completed,task_exploded"}, {}, 422, "types", "task_exploded"),
    ({"task": "not-a-uuid"}, {}, 422, "task", "task"),
    ({"mission": "42"}, {}, 422, "mission", "mission"),
    ({}, {"Last-Event-ID": "yesterday"}, 422, "Last-Event-ID", "Last-Event-ID"),
    ({"agent": "nobody"}, {}, 404, None, "nobody"),
])
async def test_bad_filters_are_refused_before_the_stream_opens(edge: TownhallProcess, params: dict[str, str],
                                                               headers: dict[str, str], status: int,
                                                               field: str | None, named: str) -> None:
    async with httpx.AsyncClient(base_url=edge.url, timeout=TIMEOUT) as client:
        response = await client.get("/v1/events", params=params, headers={**READER.bearer(), **headers})
    assert response.status_code == status and response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert named in body["detail"]
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_a_client_that_stops_reading_is_dropped_and_memory_stays_bounded(edge: TownhallProcess,
                                                                              aredis) -> None:
    town = load_town(edge.town_dir).name
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", edge.port))
    stalled.sendall(f"GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READER.key}\r\n\r\n".encode())
    seen = b""
    while b": subscribed" not in seen:
        seen += stalled.recv(4096)
    # From here on it reads nothing. Events the size other tools may write fill its buffers.
    assert edge.process is not None
    before = rss_kib(edge.process.pid)
    big = "x" * 8192

    async def flood(n: int) -> None:
        async with aredis.pipeline(transaction=False) as pipe:
            for i in range(n):
                pipe.xadd(f"tt:{town}:events", {"event_type": "mission_event",
                                                "data": f'{{"event_type": "mission_event", "message": "{i} {big}"}}'})
            await pipe.execute()

    async with httpx.AsyncClient(base_url=edge.url, timeout=TIMEOUT) as client:
        async with subscribe(client, READER.bearer(), types="task_created") as reader:
            await flood(3000)  # 24 MiB
            async with asyncio.timeout(TIMEOUT * 2):
                while "event subscriber dropped" not in edge.output():
                    await asyncio.sleep(0.1)
            await flood(3000)
            # The reader kept up, and the other subscriber still gets its events.
            await aredis.xadd(f"tt:{town}:events", {"event_type": "task_created",
                                                    "data": '{"event_type": "task_created", "message": "last"}'})
            assert (await next_event(reader)).json()["message"] == "last"
    grown_mib = (rss_kib(edge.process.pid) - before) / 1024
    assert grown_mib < 16, f"townhall grew {grown_mib:.1f} MiB while 48 MiB of events passed a stalled client"
    assert edge.output().count("event subscriber dropped") == 1
    stalled.close()


async def test_sigterm_with_streams_open_stops_cleanly(town_dir: Path, procs: list[TownhallProcess]) -> None:
    proc = serve(town_dir, procs)
    async with httpx.AsyncClient(base_url=proc.url, timeout=TIMEOUT) as client:
        async with subscribe(client) as one, subscribe(client) as two, subscribe(client, agent="supervisor") as three:
            assert proc.process is not None
            proc.process.send_signal(signal.SIGTERM)
            for stream in (one, two, three):
                with pytest.raises(EOFError):  # each stream ends (the client would resume elsewhere)
                    async with asyncio.timeout(TIMEOUT):
                        await next_event(stream)
    assert proc.stop() == 0
    assert "timeout graceful shutdown exceeded" not in proc.output()
