"""Auth test helpers of the core's own tests: the auth sweep over the app's route table, and trustme PKI.

The sweep walks the application's own route table (built in-process from the town's config, with the
same plugins a real process loads), so a route added later is swept without touching the tests. API keys
with cheap hashes come from :mod:`townhall_auth_apikey.testing`, the local OIDC issuer from
:mod:`townhall_auth_oidc.testing`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trustme

from townhall.app import create_app
from townhall.plugins import load_plugins
from townhall.runtime import build_runtime
from townhall.auth import Scope
from townhall.config import load_town
from townhall_auth_apikey.testing import IssuedKey

#: The sweep's extra config: an audit file to check, and no rate limits (the sweep sends ~200 requests,
#: half with bad credentials, from one address; the limiter is tested on its own in test_auth_http.py).
SWEEP_AUDIT_FILE = "audit.jsonl"
SWEEP_TOML = f'[townhall.audit]\nfile = "{SWEEP_AUDIT_FILE}"\n[townhall.rate_limit]\nenabled = false\n'


# --- the app's own route table ---------------------------------------------------------------------

#: Syntactically valid values for path parameters: ids are UUIDs (they name nothing that exists).
PATH_VALUES = {"agent": "sweep-agent", "task_id": str(uuid.UUID(int=1)), "mission_id": str(uuid.UUID(int=2))}


@dataclass(frozen=True)
class RouteCase:
    method: str
    template: str
    scope: Scope | None

    @property
    def path(self) -> str:
        path = self.template
        for name, value in PATH_VALUES.items():
            path = path.replace("{" + name + ":str}", value)
        if "{" in path:
            raise AssertionError(f"no test value for a path parameter of {self.template}")
        return path


def app_routes(town_dir: Path) -> list[RouteCase]:
    """Every (method, path template, declared scope) of the app townhall builds for ``town_dir``."""
    runtime = build_runtime(load_town(town_dir), load_plugins())
    app = create_app(runtime)
    cases = [
        RouteCase(method, route.path, handler.opt.get("scope"))
        for route in app.routes
        for handler in getattr(route, "route_handlers", [])
        for method in sorted(getattr(handler, "http_methods", ()))
    ]
    asyncio.run(runtime.aclose())
    return sorted(set(cases), key=lambda c: (c.template, c.method))


def protected_routes(town_dir: Path) -> list[RouteCase]:
    return [case for case in app_routes(town_dir) if case.scope is not None]


# --- the sweep -------------------------------------------------------------------------------------


@dataclass
class SweepCall:
    route: RouteCase
    credential: str  # "none", "wrong", or the id of the key used
    key: IssuedKey | None
    status: int
    headers: httpx.Headers
    body: bytes
    request_id: str


@dataclass
class Sweep:
    calls: list[SweepCall] = field(default_factory=list)

    def of(self, credential: str) -> list[SweepCall]:
        return [c for c in self.calls if c.credential == credential]


WRONG_KEY = "f" * 64


def sweep(client: httpx.Client, routes: list[RouteCase], keys: dict[Scope, IssuedKey]) -> Sweep:
    """Every route × {no credentials, a wrong key, every key lacking the scope, every key granting it}."""
    result = Sweep()
    for route in routes:
        assert route.scope is not None
        attempts: list[tuple[str, IssuedKey | None, dict[str, str]]] = [
            ("none", None, {}),
            ("wrong", None, {"Authorization": f"Bearer {WRONG_KEY}"}),
        ]
        attempts += [(key.id, key, key.bearer()) for key in keys.values()]
        for credential, key, headers in attempts:
            request_id = f"sweep-{uuid.uuid4().hex}"
            kwargs: dict[str, Any] = {"headers": {**headers, "X-Request-ID": request_id}}
            if route.method in ("POST", "PUT", "PATCH"):
                kwargs["json"] = {}
            with client.stream(route.method, route.path, **kwargs) as response:
                # An event stream (GET /v1/events) never ends: its first line is enough.
                streaming = response.headers.get("content-type", "").startswith("text/event-stream")
                body = next(response.iter_lines()).encode() if streaming else response.read()
            result.calls.append(SweepCall(route, credential, key, response.status_code, response.headers,
                                          body, request_id))
    return result


def bearer_challenge(call: SweepCall) -> str:
    return call.headers.get("www-authenticate", "")


def check_problem(call: SweepCall, status: int) -> None:
    where = f"{call.route.method} {call.route.template} [{call.credential}]"
    assert call.status == status, f"{where}: {call.status} {call.body[:300]!r}"
    assert call.headers["content-type"].startswith("application/problem+json"), where
    body = json.loads(call.body)
    assert body["status"] == status and body["instance"] == call.route.path, where
    assert body["request_id"] == call.request_id == call.headers["x-request-id"], where


def check_sweep(result: Sweep) -> None:
    """401 / 401 / 403 / neither — with the right challenges and problem bodies."""
    for call in result.of("none"):
        check_problem(call, 401)
        assert bearer_challenge(call) == 'Bearer realm="townhall"', call.route
    for call in result.of("wrong"):
        check_problem(call, 401)
        challenge = bearer_challenge(call)
        assert challenge.startswith('Bearer realm="townhall"') and 'error="invalid_token"' in challenge
        assert WRONG_KEY not in challenge and WRONG_KEY.encode() not in call.body
    for call in result.calls:
        if call.key is None:
            continue
        where = f"{call.route.method} {call.route.template} with key {call.key.id}: {call.body[:300]!r}"
        assert call.route.scope is not None
        if call.key.grants(call.route.scope):
            assert call.status not in (401, 403, 429) and call.status < 500, where
        else:
            check_problem(call, 403)
            challenge = bearer_challenge(call)
            assert 'error="insufficient_scope"' in challenge, where
            assert f'scope="{call.route.scope.value}"' in challenge, where


def check_sweep_audit(result: Sweep, audit: list[dict[str, Any]], keys: dict[Scope, IssuedKey]) -> None:
    """Each 401/403 and each mutating request has exactly one audit line naming the key id; reads that
    pass have none; no line carries a key."""
    by_request = {}
    for line in audit:
        assert line["request_id"] not in by_request, f"two audit lines for {line['request_id']}"
        by_request[line["request_id"]] = line
    for call in result.calls:
        line = by_request.get(call.request_id)
        denied = call.status in (401, 403)
        if not denied and call.route.method == "GET":
            assert line is None, f"audit line for a plain read: {line}"
            continue
        assert line is not None, f"no audit line for {call.route.method} {call.route.path} [{call.credential}]"
        expected_principal = call.key.id if call.key is not None else "anonymous"
        assert len(line.pop("server_request_id")) == 32  # the server's own id, always recorded
        assert line == {
            "request_id": call.request_id,
            "principal": expected_principal,
            "method": call.route.method,
            "path": call.route.path,
            "status": call.status,
            "outcome": "denied" if denied else ("success" if call.status < 400 else "error"),
        }
    text = json.dumps(audit)
    for key in keys.values():
        assert key.key not in text and key.hash not in text
    assert WRONG_KEY not in text


# --- trustme PKI -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server: Path  # key and certificate chain in one PEM
    client: Path  # a client certificate (and key) issued by the same CA

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def tls_toml(self) -> str:
        return (f'[townhall.tls]\nenabled = true\ncert_file = "{self.server}"\n'
                f'key_file = "{self.server}"\n')


def make_pki(directory: Path) -> Pki:
    ca = trustme.CA()
    pki = Pki(ca=directory / "ca.pem", server=directory / "server.pem", client=directory / "client.pem")
    ca.cert_pem.write_to_path(pki.ca)
    ca.issue_cert("localhost", "127.0.0.1", "::1").private_key_and_cert_chain_pem.write_to_path(pki.server)
    ca.issue_cert("ops@example.com").private_key_and_cert_chain_pem.write_to_path(pki.client)
    return pki
