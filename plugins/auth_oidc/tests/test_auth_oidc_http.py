"""Mode ``oidc`` over HTTP: a real townhall process checks Bearer JWTs against a local issuer (discovery
document + JWKS served from a thread on 127.0.0.1); the tests sign their own tokens with joserfc.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from joserfc import jwt

from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import append_config, read_audit
from townhall.testing.towns import write_town
from townhall_auth_oidc.testing import LocalIssuer, oidc_toml

RELAXED_LIMITS = "[townhall.rate_limit]\nburst_size = 1000\n"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        yield running


def serve_oidc(root: Path, redis_url: str, issuer: LocalIssuer, **options: Any) -> TownhallProcess:
    write_town(root, f"t{uuid.uuid4().hex[:10]}", redis_url=redis_url)
    append_config(root, oidc_toml(issuer, **options) + RELAXED_LIMITS + '[townhall.audit]\nfile = "audit.jsonl"\n')
    return TownhallProcess(root).start()


@pytest.fixture(scope="module")
def townhall_oidc(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
                  issuer: LocalIssuer) -> Iterator[TownhallProcess]:
    if not redis_server.running:
        redis_server.start()
    proc = serve_oidc(tmp_path_factory.mktemp("oidc"), redis_server.url, issuer)
    yield proc
    proc.stop()


@pytest.fixture
def client(townhall_oidc: TownhallProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=townhall_oidc.url, timeout=10) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_valid_tokens_are_accepted(client: httpx.Client, issuer: LocalIssuer) -> None:
    assert client.get("/v1/status", headers=bearer(issuer.token("rsa1"))).status_code == 200
    assert client.get("/v1/town", headers=bearer(issuer.token("ec1"))).status_code == 200
    # The colon spelling of a townhall scope and the scp list claim work too.
    token = issuer.token("ec1", scope=None, scp=["town:read"])
    assert client.get("/v1/agents", headers=bearer(token)).status_code == 200
    # Case-insensitive scheme (RFC 7235).
    assert client.get("/v1/status", headers={"Authorization": f"bearer {issuer.token()}"}).status_code == 200


def now() -> int:
    return int(time.time())


REJECTED: list[tuple[str, Callable[[LocalIssuer], str], str]] = [
    ("alg none", lambda i: i.unsigned_token(), "token algorithm not allowed"),
    ("HS256 keyed with the public key", lambda i: i.hs256_with_public_key(), "token algorithm not allowed"),
    ("wrong iss", lambda i: i.token(iss="https://evil.example.test"), "wrong issuer"),
    ("wrong aud", lambda i: i.token(aud="another-service"), "wrong audience"),
    ("expired", lambda i: i.token(iat=now() - 7200, exp=now() - 3600), "token expired"),
    ("not yet valid", lambda i: i.token(nbf=now() + 3600), "token not yet valid"),
    ("unknown kid", lambda i: i.token("rogue"), "unknown signing key"),
    ("another key under a known kid",
     lambda i: jwt.encode({"alg": "RS256", "kid": "rsa1"}, i.claims(), i.keys["rogue"], algorithms=["RS256"]),
     "bad signature"),
    ("no sub", lambda i: i.token(sub=None), "token lacks claim sub"),
    ("not a JWT", lambda i: "not-a-jwt", "malformed token"),
]


@pytest.mark.parametrize(("case", "make", "reason"), REJECTED, ids=[r[0] for r in REJECTED])
def test_bad_tokens_get_401_invalid_token(client: httpx.Client, issuer: LocalIssuer, case: str,
                                          make: Callable[[LocalIssuer], str], reason: str) -> None:
    token = make(issuer)
    response = client.get("/v1/status", headers=bearer(token))
    assert response.status_code == 401, case
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="townhall", error="invalid_token", error_description="{reason}"')
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["status"], body["detail"], body["instance"]) == (401, reason, "/v1/status")
    assert token not in response.text


def test_no_token_or_an_api_key_header_is_unauthenticated(client: httpx.Client, issuer: LocalIssuer) -> None:
    for headers in ({}, {"X-API-Key": issuer.token()}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        response = client.get("/v1/status", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="townhall"'


def test_missing_route_scope_is_403_and_the_subject_is_audited(client: httpx.Client, issuer: LocalIssuer,
                                                              townhall_oidc: TownhallProcess) -> None:
    reader = issuer.token(sub="reader-7")  # scope "openid town.read"
    denied = client.post("/v1/backlog", json={"description": "x"}, headers=bearer(reader))
    assert denied.status_code == 403
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    assert 'scope="town.write"' in denied.headers["www-authenticate"]
    no_townhall_scope = issuer.token(scope="openid profile")
    assert client.get("/v1/status", headers=bearer(no_townhall_scope)).status_code == 403
    writer = issuer.token(sub="writer-9", scope="town.read town.write")
    added = client.post("/v1/backlog", json={"description": "from a token"}, headers=bearer(writer))
    assert added.status_code == 201
    audit = {line["request_id"]: line for line in read_audit(townhall_oidc.town_dir / "audit.jsonl")}
    assert audit[denied.headers["x-request-id"]]["principal"] == "reader-7"
    assert audit[added.headers["x-request-id"]]["principal"] == "writer-9"
    assert audit[added.headers["x-request-id"]]["outcome"] == "success"


def test_required_scopes_missing_is_403(tmp_path: Path, redis_url: str, issuer: LocalIssuer) -> None:
    proc = serve_oidc(tmp_path, redis_url, issuer, required_scopes=["townhall"])
    try:
        with httpx.Client(base_url=proc.url, timeout=10) as http:
            lacking = http.get("/v1/status", headers=bearer(issuer.token(scope="town.read")))
            assert lacking.status_code == 403
            assert lacking.headers["www-authenticate"] == (
                'Bearer realm="townhall", error="insufficient_scope", '
                'error_description="token lacks required scopes"')
            assert lacking.json()["detail"] == "token lacks required scopes"
            ok = http.get("/v1/status", headers=bearer(issuer.token(scope="townhall town.read")))
            assert ok.status_code == 200
    finally:
        proc.stop()
