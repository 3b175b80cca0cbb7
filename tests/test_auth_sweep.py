"""The auth sweep over HTTP: every protected route × {no credentials, a wrong key, keys lacking its scope,
keys granting it} against a real townhall process in api_key mode, with the audit file checked.

Routes come from the app's own route table, so a new route is swept without editing this file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support.auth import (
    SWEEP_AUDIT_FILE,
    SWEEP_TOML,
    WRONG_KEY,
    RouteCase,
    app_routes,
    check_sweep,
    check_sweep_audit,
    protected_routes,
    sweep,
)
from townhall.auth import Scope
from townhall.testing.process import TownhallProcess
from townhall.testing.towns import append_config, read_audit
from townhall_auth_apikey.testing import IssuedKey, api_keys_toml, scope_keys

AUDIT_FILE = SWEEP_AUDIT_FILE
#: Public by design (reference §5.1, §7.3, plus the OpenAPI document, the /errors page, and with the
#: dashboard plugin installed: its page and assets, which hold no town data, and ``/`` redirecting there).
PUBLIC_PREFIXES = ("/health", "/healthz", "/ready", "/readyz", "/metrics", "/api/scaling", "/schema", "/errors", "/ui")
#: Routes outside /v1 that declare a scope, which the core's guard enforces as under /v1: the dashboard's panels.
SCOPED_ELSEWHERE = ("/ui/",)


READ, WRITE, MANAGE = Scope.TOWN_READ, Scope.TOWN_WRITE, Scope.AGENT_MANAGE
REFERENCE_ROUTES = {
    RouteCase(method, template, scope)
    for method, template, scope in [
        ("GET", "/v1/town", READ), ("GET", "/v1/status", READ), ("GET", "/v1/agents", READ),
        ("GET", "/v1/tasks/pending", READ), ("GET", "/v1/backlog", READ),
        ("GET", "/v1/agents/{agent:str}/inbox", READ), ("POST", "/v1/agents/{agent:str}/inbox", READ),
        ("POST", "/v1/tasks/assign", WRITE), ("POST", "/v1/backlog", WRITE),
        ("POST", "/v1/backlog/{task_id:str}/claim", WRITE), ("POST", "/v1/backlog/assign-all", WRITE),
        ("DELETE", "/v1/backlog/{task_id:str}", WRITE), ("POST", "/v1/messages/send", WRITE),
        ("POST", "/v1/agents", MANAGE), ("POST", "/v1/agents/{agent:str}/kill", MANAGE),
        ("POST", "/v1/agents/{agent:str}/restart", MANAGE), ("POST", "/v1/agents/prune", MANAGE),
        ("POST", "/v1/recover", MANAGE), ("POST", "/v1/reclaim", MANAGE),
        ("POST", "/v1/reclaim/orphan-tasks", MANAGE),
        ("POST", "/v1/missions/{mission_id:str}/stop", MANAGE),
        ("POST", "/v1/missions/{mission_id:str}/resume", MANAGE),
        ("POST", "/v1/missions/{mission_id:str}/complete", MANAGE),
        ("POST", "/v1/missions/{mission_id:str}/fail", MANAGE),
        ("DELETE", "/v1/missions/{mission_id:str}", MANAGE),
    ]
}


@pytest.fixture(scope="module")
def keys() -> dict[Scope, IssuedKey]:
    return scope_keys()


def configure(town_dir: Path, keys: dict[Scope, IssuedKey]) -> None:
    append_config(town_dir, api_keys_toml(list(keys.values())) + SWEEP_TOML)


@pytest.fixture
def served(town_dir: Path, keys: dict[Scope, IssuedKey]) -> Iterator[TownhallProcess]:
    configure(town_dir, keys)
    proc = TownhallProcess(town_dir).start()
    yield proc
    proc.stop()


def test_every_v1_route_declares_a_scope_and_everything_else_is_a_known_public_route(town_dir: Path,
                                                                                    keys: dict) -> None:
    configure(town_dir, keys)
    routes = app_routes(town_dir)
    for case in routes:
        if case.template.startswith("/v1"):
            # Litestar answers OPTIONS itself (Allow header, empty body): no data, so no scope.
            assert case.scope is not None or case.method == "OPTIONS", case
        elif case.scope is not None:
            assert case.template.startswith(SCOPED_ELSEWHERE), case
        else:
            assert case.template.startswith(PUBLIC_PREFIXES) or case.template == "/", case
    protected = {c for c in routes if c.scope is not None}
    # Every route of the reference's table (§7.3) is there with the reference's scope.
    assert REFERENCE_ROUTES <= protected, REFERENCE_ROUTES - protected


def test_sweep_every_protected_route(served: TownhallProcess, town_dir: Path, keys: dict[Scope, IssuedKey]) -> None:
    routes = protected_routes(town_dir)
    with httpx.Client(base_url=served.url, timeout=10) as client:
        result = sweep(client, routes, keys)
    check_sweep(result)
    # The keys granting each route's scope reached the handler (admin included).
    passed = {(c.route, c.credential) for c in result.calls if c.status not in (401, 403)}
    for route in routes:
        assert route.scope is not None
        assert (route, keys[route.scope].id) in passed and (route, keys[Scope.ADMIN].id) in passed
    check_sweep_audit(result, read_audit(town_dir / AUDIT_FILE), keys)
    log = served.output()
    for key in keys.values():
        assert key.key not in log
    assert WRONG_KEY not in log


def test_public_routes_stay_public_with_any_credentials(served: TownhallProcess, town_dir: Path,
                                                        keys: dict[Scope, IssuedKey]) -> None:
    public = [c for c in app_routes(town_dir)
              if c.scope is None and c.method == "GET" and not c.template.startswith("/v1") and "{" not in c.template]
    assert {c.template for c in public} >= {"/health", "/healthz", "/ready", "/readyz", "/metrics", "/api/scaling",
                                             "/errors"}
    credentials = [{}, {"Authorization": f"Bearer {WRONG_KEY}"}, {"X-API-Key": WRONG_KEY},
                   {"Authorization": "Basic Zm9vOmJhcg=="}, keys[Scope.TOWN_READ].bearer()]
    with httpx.Client(base_url=served.url, timeout=10, follow_redirects=True) as client:
        for case in public:
            for headers in credentials:
                response = client.get(case.template, headers=headers)
                assert response.status_code == 200, (case.template, headers.keys(), response.text[:200])
                assert "www-authenticate" not in response.headers
    # Public reads are not audited, even with a wrong key.
    assert read_audit(town_dir / AUDIT_FILE) == []


def test_options_on_a_v1_route_reveals_nothing(served: TownhallProcess) -> None:
    response = httpx.options(f"{served.url}/v1/agents", timeout=10)
    assert response.status_code in (200, 204)
    assert response.content in (b"", b"null")
    assert "GET" in response.headers["allow"]


def test_denials_are_audited_with_the_key_id(served: TownhallProcess, town_dir: Path,
                                             keys: dict[Scope, IssuedKey]) -> None:
    reader = keys[Scope.TOWN_READ]
    with httpx.Client(base_url=served.url, timeout=10) as client:
        denied = client.post("/v1/backlog", json={"description": "x"}, headers=reader.bearer())
        anonymous = client.get("/v1/status", headers={"X-API-Key": "not-a-key"})
    assert (denied.status_code, anonymous.status_code) == (403, 401)
    lines = {line["request_id"]: line for line in read_audit(town_dir / AUDIT_FILE)}
    assert lines[denied.headers["x-request-id"]]["principal"] == reader.id
    assert lines[anonymous.headers["x-request-id"]] == {
        "request_id": anonymous.headers["x-request-id"], "principal": "anonymous", "method": "GET",
        "path": "/v1/status", "status": 401, "outcome": "denied",
        "server_request_id": anonymous.headers["x-request-id"],  # it sent none: the server's id is the id
    }
    assert "not-a-key" not in json.dumps(list(lines.values()))
