"""Every error is problem+json with a request id; limits and timeouts are enforced (in-process app)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from litestar import get, post
from litestar.params import JSONBody

from townhall import hookimpl
from townhall.auth import Scope
from townhall.testing.inprocess import app_client
from townhall.testing.towns import write_town


class Echo(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    count: int = 0


@post("/test/echo", sync_to_thread=False)
def echo(data: JSONBody[Echo]) -> Echo:
    return data


@get("/test/slow")
async def slow() -> str:
    await asyncio.sleep(30)
    return "late"


@get("/test/boom", sync_to_thread=False)
def boom() -> str:
    raise RuntimeError("secret internals")


@get("/v1/test/private", opt={"scope": Scope.ADMIN}, sync_to_thread=False)
def private() -> str:
    return "secret"


class TestRoutes:
    """A plugin using the app-setup hook to add routes."""

    @hookimpl
    def townhall_setup_app(self, app_config, context) -> None:  # type: ignore[no-untyped-def]
        app_config.route_handlers.extend([echo, slow, private, boom])


def _town(tmp_path: Path, redis_url: str, extra: str = "") -> Path:
    return write_town(tmp_path, "envelope", redis_url=redis_url, extra=extra)


def _assert_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith(f"/errors#{status}-")
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["instance"] == response.request.url.path
    return body


async def test_framework_errors_are_problems(tmp_path: Path, redis_url: str) -> None:
    async with app_client(_town(tmp_path, redis_url, "[townhall]\nmax_body_bytes = 100\n"),
                          extra=[("test_routes", TestRoutes())]) as client:
        _assert_problem(await client.get("/no/such/route"), 404)
        body = _assert_problem(await client.delete("/health"), 405)
        assert "DELETE" in body["detail"]
        _assert_problem(await client.post("/test/echo", content=b"{not json",
                                           headers={"content-type": "application/json"}), 400)
        _assert_problem(await client.post("/test/echo", content=b"name=x",
                                           headers={"content-type": "application/x-www-form-urlencoded"}), 415)
        _assert_problem(await client.post("/test/echo", json={"name": "x" * 200}), 413)
        body = _assert_problem(await client.post("/test/echo", json={"name": 5}), 422)
        assert body["errors"][0]["field"] == "name"
        body = _assert_problem(await client.post("/test/echo", json={"count": 1}), 422)
        assert body["errors"][0]["field"] == "name"
        body = _assert_problem(await client.post("/test/echo", json={"name": "a", "bogus": 1}), 422)
        assert body["errors"][0]["field"] == "bogus"
        crash = _assert_problem(await client.get("/test/boom"), 500)
        assert "secret internals" not in crash["detail"]  # internals are logged, not shown
        ok = await client.post("/test/echo", json={"name": "a"})
        assert ok.status_code == 201 and ok.json() == {"name": "a", "count": 0}


async def test_invalid_query_values_are_422_whatever_the_url_says(tmp_path: Path, redis_url: str) -> None:
    # The status follows the exception's type, never words in its text (which quotes the URL).
    async with app_client(_town(tmp_path, redis_url)) as client:
        for url, field in (("/v1/status?deep=maybe", "deep"), ("/v1/status?deep=malformed", "deep"),
                           ("/v1/missions?active_only=decode", "active_only")):
            body = _assert_problem(await client.get(url), 422)
            assert [e["field"] for e in body["errors"]] == [field], url


async def test_v1_bodies_are_decoded_strictly_and_malformed_ones_worded_as_litestar_does(
    tmp_path: Path, redis_url: str
) -> None:
    async with app_client(_town(tmp_path, redis_url)) as client:
        body = _assert_problem(await client.post("/v1/agents/prune", json={"all": 1}), 422)
        assert body["detail"] == "Invalid request: all: Expected `bool`, got `int`"
        # An unknown member is skipped by the typed decoder, which names another byte for this error
        # than the untyped parse that Litestar's wording comes from.
        body = _assert_problem(await client.post("/v1/agents/prune", content=b'{"zz": [1, {a": 2}], "all": true}',
                                                 headers={"content-type": "application/json"}), 400)
        assert body["detail"] == "JSON is malformed: object keys must be strings (byte 12)"
        body = _assert_problem(await client.post("/v1/agents/prune", content=b" ",
                                                 headers={"content-type": "application/json"}), 400)
        assert body["detail"] == "Input data was truncated"


async def test_request_id_is_echoed_or_generated(tmp_path: Path, redis_url: str) -> None:
    async with app_client(_town(tmp_path, redis_url)) as client:
        given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
        assert given.headers["x-request-id"] == "abc-123"
        generated = await client.get("/health")
        assert len(generated.headers["x-request-id"]) == 32
        insane = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
        assert insane.headers["x-request-id"] != "bad id\twith spaces"
        missing = await client.get("/nowhere", headers={"X-Request-ID": "r-404"})
        assert missing.json()["request_id"] == "r-404"


async def test_request_timeout_is_a_problem(tmp_path: Path, redis_url: str) -> None:
    town = _town(tmp_path, redis_url, "[townhall]\nrequest_timeout_ms = 200\n"
                 '[townhall.cors]\nallow_origins = ["https://ops.example.com"]\n')
    async with app_client(town, extra=[("test_routes", TestRoutes())]) as client:
        late = await client.get("/test/slow", headers={"Origin": "https://ops.example.com", "X-Request-ID": "r-504"})
        body = _assert_problem(late, 504)
        assert "200 ms" in body["detail"]
        # Answered by the app like any error: a browser may read it, and it is one response of the request.
        assert late.headers["access-control-allow-origin"] == "https://ops.example.com"
        assert late.headers.get_list("x-request-id") == ["r-504"] and body["request_id"] == "r-504"
        scrape = (await client.get("/metrics")).text
        assert 'tinytown_http_requests_total{method="GET",route="/test/slow",status="504"} 1.0' in scrape
        assert 'tinytown_http_request_duration_seconds_count{method="GET",route="/test/slow"} 1.0' in scrape


def test_server_request_ids_are_unique_across_a_fork() -> None:
    import os

    from townhall.problems import server_request_id_of

    before = {server_request_id_of({}) for _ in range(10)}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the ids it hands out next, to the parent
        os.write(write, " ".join(server_request_id_of({}) for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    child = set(os.read(read, 4096).decode().split())
    os.waitpid(pid, 0)
    parent = {server_request_id_of({}) for _ in range(10)}
    assert len(before | child | parent) == 30 and all(len(i) == 32 for i in child)


async def test_health_reports_version_and_process_uptime(tmp_path: Path, redis_url: str) -> None:
    from townhall import __version__

    async with app_client(_town(tmp_path, redis_url)) as client:
        body = (await client.get("/healthz")).json()
        assert body["status"] == "ok" and body["version"] == __version__
        assert isinstance(body["uptime_secs"], int) and body["uptime_secs"] >= 0


async def test_scoped_route_without_scope_is_forbidden_only_when_principal_lacks_it(
    tmp_path: Path, redis_url: str
) -> None:
    async with app_client(_town(tmp_path, redis_url), extra=[("test_routes", TestRoutes())]) as client:
        # auth mode none grants every scope
        assert (await client.get("/v1/test/private")).text == "secret"
