"""Rate limits, the audit log and CORS (in-process app with test routes)."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
from litestar import WebSocket, get, post, websocket
from litestar.exceptions import WebSocketDisconnect

from townhall import hookimpl
from townhall.auth import Scope
from townhall.testing.inprocess import app_client
from townhall.testing.towns import write_town


@get("/v1/test/read", opt={"scope": Scope.TOWN_READ}, sync_to_thread=False)
def read_route() -> str:
    return "read"


@post("/v1/test/write", opt={"scope": Scope.TOWN_WRITE}, sync_to_thread=False)
def write_route() -> str:
    return "written"


@websocket("/v1/test/socket", opt={"scope": Scope.TOWN_WRITE})
async def socket_route(socket: WebSocket) -> None:
    await socket.accept()
    await socket.send_text(f"hello {socket.user.id}")
    await socket.close()


class Routes:
    @hookimpl
    def townhall_setup_app(self, app_config, context) -> None:  # type: ignore[no-untyped-def]
        app_config.route_handlers.extend([read_route, write_route, socket_route])


PLUGINS = [("policy_routes", Routes())]


def _town(tmp_path: Path, redis_url: str, extra: str) -> Path:
    # A town of its own per test: the rate-limit buckets live in the town's Redis keys.
    return write_town(tmp_path, f"policies-{uuid.uuid4().hex[:8]}", redis_url=redis_url, extra=extra)


LIMITS = "[townhall.rate_limit]\nenabled = true\nburst_size = 3\nrequests_per_minute = 6\nmutating_requests_per_minute = 6\n"


async def test_rate_limit_429_with_retry_after_and_separate_buckets(tmp_path: Path, redis_url: str) -> None:
    async with app_client(_town(tmp_path, redis_url, LIMITS), extra=PLUGINS) as client:
        for _ in range(3):
            assert (await client.get("/v1/test/read")).status_code == 200
        limited = await client.get("/v1/test/read")
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(limited.headers["retry-after"]) <= 10
        assert limited.json()["status"] == 429
        # writes have their own bucket
        assert (await client.post("/v1/test/write")).status_code == 201
        # public probes are never limited
        assert (await client.get("/health")).status_code == 200


async def test_forwarded_for_only_counts_from_trusted_proxies(tmp_path: Path, redis_url: str) -> None:
    untrusted = LIMITS
    async with app_client(_town(tmp_path, redis_url, untrusted), extra=PLUGINS) as client:
        codes = [(await client.get("/v1/test/read", headers={"X-Forwarded-For": f"10.0.0.{i}"})).status_code
                 for i in range(4)]
        assert codes == [200, 200, 200, 429]  # spoofed addresses share the peer's bucket


def _unused_store():  # type: ignore[no-untyped-def]
    """A bucket store on a client that never connects (the address rules need no Redis)."""
    import redis.asyncio as aioredis

    from townhall.store import TownStore

    return TownStore(aioredis.Redis.from_url("redis://127.0.0.1:1"), "unused").limits


def test_bad_trusted_proxy_is_a_config_error() -> None:
    from townhall.config import ConfigError, RateLimitConfig
    from townhall.http.ratelimit import RequestRateLimiter

    with pytest.raises(ConfigError, match="trusted_proxies: 'proxy.local' is not an IP"):
        RequestRateLimiter(RateLimitConfig(trusted_proxies=["proxy.local"]), _unused_store())


def test_forwarded_for_from_trusted_proxy_picks_nearest_untrusted_hop() -> None:
    from types import SimpleNamespace

    from litestar.datastructures import Headers

    from townhall.config import RateLimitConfig
    from townhall.http.ratelimit import RequestRateLimiter

    limiter = RequestRateLimiter(RateLimitConfig(trusted_proxies=["10.0.0.0/8"]), _unused_store())
    conn = SimpleNamespace(client=SimpleNamespace(host="10.1.1.1"),
                           headers=Headers({"x-forwarded-for": "198.51.100.7, 203.0.113.9, 10.2.2.2"}))
    assert limiter.client_address(conn) == "203.0.113.9"  # type: ignore[arg-type]
    # Several lines are one list, in order (the last line is the nearest proxy's).
    lines = Headers([(b"x-forwarded-for", b"198.51.100.7"), (b"x-forwarded-for", b"203.0.113.9, 10.2.2.2")])
    assert limiter.client_address(SimpleNamespace(client=conn.client, headers=lines)) == "203.0.113.9"  # type: ignore[arg-type]
    stranger = SimpleNamespace(client=SimpleNamespace(host="192.0.2.1"),
                               headers=Headers({"x-forwarded-for": "198.51.100.7"}))
    assert limiter.client_address(stranger) == "192.0.2.1"  # type: ignore[arg-type]


async def test_rate_limit_off_by_default_for_auth_none(tmp_path: Path, redis_url: str) -> None:
    async with app_client(_town(tmp_path, redis_url, ""), extra=PLUGINS) as client:
        codes = {(await client.get("/v1/test/read")).status_code for _ in range(40)}
        assert codes == {200}


async def test_audit_line_per_mutating_request(tmp_path: Path, redis_url: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    audit_file = tmp_path / "audit.jsonl"
    town = _town(tmp_path, redis_url, f'[townhall.audit]\nfile = "{audit_file}"\n')
    caplog.set_level(logging.INFO, logger="townhall.audit")
    async with app_client(town, extra=PLUGINS) as client:
        await client.get("/v1/test/read")
        await client.post("/v1/test/write", headers={"X-Request-ID": "req-1"})
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "townhall.audit"]
    server_id = records[0].pop("server_request_id")  # issue 14 item 12: the server's own id, always
    assert len(server_id) == 32 and server_id != "req-1"
    assert records == [{"request_id": "req-1", "principal": "local", "method": "POST",
                        "path": "/v1/test/write", "status": 201, "outcome": "success"}]
    lines = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert lines == [{**records[0], "server_request_id": server_id}]


async def test_cors_off_by_default_and_allow_list_lets_authorization_through(
    tmp_path: Path, redis_url: str
) -> None:
    preflight = {"Origin": "https://ops.example.com", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}
    async with app_client(_town(tmp_path, redis_url, ""), extra=PLUGINS) as client:
        response = await client.get("/v1/test/read", headers={"Origin": "https://ops.example.com"})
        assert "access-control-allow-origin" not in response.headers
    (tmp_path / "cors").mkdir()
    town = _town(tmp_path / "cors", redis_url, '[townhall.cors]\nallow_origins = ["https://ops.example.com"]\n')
    async with app_client(town, extra=PLUGINS) as client:
        ok = await client.options("/v1/test/read", headers=preflight)
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == "https://ops.example.com"
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        evil = await client.options("/v1/test/read", headers={**preflight, "Origin": "https://evil.example"})
        assert evil.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_a_plugins_websocket_route_is_guarded_like_any_route(tmp_path: Path, redis_url: str) -> None:
    from townhall_auth_apikey.testing import api_keys_toml, make_key

    reader, writer = make_key("reader", Scope.TOWN_READ), make_key("writer", Scope.TOWN_WRITE)
    async with app_client(_town(tmp_path, redis_url, api_keys_toml([reader, writer])), extra=PLUGINS) as client:
        # Without credentials, or without the route's scope, the connection is refused before it opens.
        # (Litestar closes a refused websocket with 4000 + the HTTP status.)
        for headers, code in (({}, 4401), ({"Authorization": "Bearer wrong"}, 4401), (reader.bearer(), 4403)):
            with pytest.raises(WebSocketDisconnect) as refused:
                with await client.websocket_connect("/v1/test/socket", headers=headers) as socket:
                    socket.receive_text()
            assert refused.value.code == code, (headers, refused.value)
        with await client.websocket_connect("/v1/test/socket", headers=writer.bearer()) as socket:
            assert socket.receive_text() == "hello writer"
