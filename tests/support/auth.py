"""Auth test helpers: API keys with cheap hashes, a local OIDC issuer, trustme PKI, and the auth sweep.

The sweep walks the application's own route table (built in-process from the town's config, with the
same plugins a real process loads), so a route added later is swept without touching the tests.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import trustme
from argon2 import Parameters, Type
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from townhall.app import create_app
from townhall.plugins import load_plugins
from townhall.runtime import build_runtime
from townhall.auth import Scope
from townhall.config import load_town
from townhall_auth_apikey import generate_api_key

# --- API keys ---------------------------------------------------------------------------------------

#: Argon2id with almost no work. The verifier honours the parameters inside each PHC string, so tests
#: that are not about Argon2's cost use this (townhall logs a "weak parameters" warning, nothing more).
CHEAP_ARGON2 = Parameters(
    type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=1, memory_cost=64, parallelism=1
)


@dataclass(frozen=True)
class IssuedKey:
    id: str
    key: str
    hash: str
    scopes: frozenset[Scope]

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def grants(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


def make_key(key_id: str, *scopes: Scope, parameters: Parameters = CHEAP_ARGON2) -> IssuedKey:
    generated = generate_api_key(parameters)
    return IssuedKey(id=key_id, key=generated.key, hash=generated.hash, scopes=frozenset(scopes))


def api_keys_toml(keys: list[IssuedKey]) -> str:
    """``[townhall.auth]`` in api_key mode with one ``[[townhall.auth.api_keys]]`` entry per key."""
    lines = ["[townhall.auth]", 'mode = "api_key"']
    for key in keys:
        scopes = ", ".join(json.dumps(s.value) for s in sorted(key.scopes, key=lambda s: s.value))
        lines += ["[[townhall.auth.api_keys]]", f"id = {json.dumps(key.id)}",
                  f"hash = {json.dumps(key.hash)}", f"scopes = [{scopes}]"]
    return "\n".join(lines) + "\n"


def scope_keys() -> dict[Scope, IssuedKey]:
    """One key per scope: each grants exactly that scope (the admin key grants all)."""
    return {scope: make_key(scope.value.replace(".", "-"), scope) for scope in Scope}


#: The sweep's extra config: an audit file to check, and no rate limits (the sweep sends ~200 requests,
#: half with bad credentials, from one address; the limiter is tested on its own in test_auth_http.py).
SWEEP_AUDIT_FILE = "audit.jsonl"
SWEEP_TOML = f'[townhall.audit]\nfile = "{SWEEP_AUDIT_FILE}"\n[townhall.rate_limit]\nenabled = false\n'


def read_audit(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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
            response = client.request(route.method, route.path, **kwargs)
            result.calls.append(SweepCall(route, credential, key, response.status_code, response.headers,
                                          response.content, request_id))
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


# --- a local OIDC issuer ---------------------------------------------------------------------------

AUDIENCE = "townhall-api"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LocalIssuer:
    """Discovery document and JWKS on 127.0.0.1 (stdlib server in a thread), and a token factory."""

    def __init__(self) -> None:
        self.keys = {
            "rsa1": RSAKey.generate_key(2048, private=True, parameters={"kid": "rsa1", "alg": "RS256"}),
            "ec1": ECKey.generate_key("P-256", private=True, parameters={"kid": "ec1", "alg": "ES256"}),
            # Never published: tokens under this kid are signed by someone the issuer does not know.
            "rogue": RSAKey.generate_key(2048, private=True, parameters={"kid": "rogue", "alg": "RS256"}),
        }
        self.published = ["rsa1", "ec1"]
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = {"keys": [issuer.keys[k].as_dict(private=False) for k in issuer.published]}
                else:
                    self.send_error(404)
                    return
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LocalIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Valid claims for now; an override of ``None`` drops the claim."""
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "aud": AUDIENCE, "sub": "user-42", "iat": now,
                                  "exp": now + 300, "scope": "openid town.read"}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str = "rsa1", **claims: Any) -> str:
        key = self.keys[kid]
        return jwt.encode({"alg": key.alg, "kid": kid, "typ": "JWT"}, self.claims(**claims), key,
                          algorithms=[key.alg])

    def unsigned_token(self, **claims: Any) -> str:
        """``alg: none``: no signature at all."""
        header = b64url(json.dumps({"alg": "none", "kid": "rsa1", "typ": "JWT"}).encode())
        return f"{header}.{b64url(json.dumps(self.claims(**claims)).encode())}."

    def hs256_with_public_key(self, **claims: Any) -> str:
        """Key confusion: HMAC-SHA256 keyed with the issuer's *published* RSA key."""
        secret = self.keys["rsa1"].as_pem(private=False)
        header = b64url(json.dumps({"alg": "HS256", "kid": "rsa1", "typ": "JWT"}).encode())
        payload = b64url(json.dumps(self.claims(**claims)).encode())
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(signature)}"


def oidc_toml(issuer: LocalIssuer, required_scopes: list[str] | None = None) -> str:
    lines = ["[townhall.auth]", 'mode = "oidc"', f"issuer = {json.dumps(issuer.url)}",
             f"audience = {json.dumps(AUDIENCE)}", "clock_skew_seconds = 30"]
    if required_scopes is not None:
        lines.append(f"required_scopes = {json.dumps(required_scopes)}")
    return "\n".join(lines) + "\n"


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


def append_config(town_dir: Path, text: str) -> None:
    with (town_dir / "tinytown.toml").open("a", encoding="utf-8") as f:
        f.write(text)

