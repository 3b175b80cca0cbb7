"""Auth mode ``oidc``: Bearer JWTs checked against a local issuer's discovery document and JWKS.

Most tests serve the issuer through ``httpx.MockTransport`` (fetches are counted, keys swapped, the
endpoint taken down); one test serves it from a real HTTP server on 127.0.0.1 and builds the mode
through the plugin manager, as the application does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from townhall.auth import AuthRequest, InvalidCredentials, Scope
from townhall.plugins import load_plugins
from townhall_auth_oidc import OidcAuth, OidcConfig
from townhall_auth_oidc.jwks import cache_ttl

ISSUER = "https://idp.example.test/realms/town"
AUDIENCE = "townhall-api"
JWKS_URL = "https://idp.example.test/realms/town/certs"


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {
        "rsa1": RSAKey.generate_key(2048, private=True, parameters={"kid": "rsa1", "alg": "RS256"}),
        "rsa2": RSAKey.generate_key(2048, private=True, parameters={"kid": "rsa2", "alg": "RS256"}),
        "ec1": ECKey.generate_key("P-256", private=True, parameters={"kid": "ec1", "alg": "ES256"}),
        "rogue": RSAKey.generate_key(2048, private=True, parameters={"kid": "rogue", "alg": "RS256"}),
    }


class Issuer:
    """Discovery + JWKS of a fake IdP, and a token factory signing with its keys."""

    def __init__(self, keys: dict[str, Any], issuer: str = ISSUER) -> None:
        self.keys = keys
        self.issuer = issuer
        self.discovery_issuer = issuer
        self.published = [keys["rsa1"], keys["ec1"]]
        self.cache_control: str | None = None
        self.down = False
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.wall = Clock(time.time())

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/certs"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.published]}

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, text="down")
        url = str(request.url)
        if url == self.issuer + "/.well-known/openid-configuration":
            self.discovery_fetches += 1
            return httpx.Response(200, json={"issuer": self.discovery_issuer, "jwks_uri": self.jwks_uri})
        if url == self.jwks_uri:
            self.jwks_fetches += 1
            headers = {"cache-control": self.cache_control} if self.cache_control else {}
            return httpx.Response(200, json=self.jwks(), headers=headers)
        return httpx.Response(404)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(self.wall())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "user-42",
            "iat": now,
            "exp": now + 300,
            "scope": "openid town.read town:write",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, kid: str = "rsa1", alg: str | None = None, **claims: Any) -> str:
        key = self.keys[kid]
        head = {"alg": alg or key.alg, "kid": kid}
        return jwt.encode(head, self.claims(**claims), key, algorithms=[head["alg"]])


@pytest.fixture
def issuer(keys: dict[str, Any]) -> Issuer:
    return Issuer(keys)


@pytest.fixture
def clock() -> Clock:
    return Clock(1000.0)


def town_config(**auth: Any) -> OidcConfig:
    settings = {"issuer": ISSUER, "audience": AUDIENCE, **auth}
    return OidcConfig(**settings)


def make_auth(fake: Issuer, clock: Clock, **auth: Any) -> OidcAuth:
    return OidcAuth.from_config(
        town_config(**auth), transport=httpx.MockTransport(fake.handle), clock=clock, now=fake.wall
    )


@pytest.fixture
async def auth(issuer: Issuer, clock: Clock) -> Any:
    mode = make_auth(issuer, clock)
    yield mode
    await mode.aclose()


def bearer(token: str) -> AuthRequest:
    return AuthRequest(headers={"authorization": f"Bearer {token}"}, client="203.0.113.9", path="/v1/town")


async def rejected(auth: OidcAuth, token: str) -> InvalidCredentials:
    with pytest.raises(InvalidCredentials) as info:
        await auth.authenticate(bearer(token))
    assert token not in info.value.description
    return info.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(signature)


# --- accepted tokens -------------------------------------------------------------------------------


async def test_valid_rs256_token_becomes_the_subject_with_mapped_scopes(
    auth: OidcAuth, issuer: Issuer
) -> None:
    principal = await auth.authenticate(bearer(issuer.token("rsa1")))
    assert principal is not None
    assert principal.id == "user-42"
    assert principal.mode == "oidc"
    # "openid" is not a townhall scope; both spellings of townhall scopes count.
    assert principal.scopes == {Scope.TOWN_READ, Scope.TOWN_WRITE}
    assert issuer.discovery_fetches == 1 and issuer.jwks_fetches == 1


async def test_valid_es256_token_with_scp_list(auth: OidcAuth, issuer: Issuer) -> None:
    token = issuer.token("ec1", scope=None, scp=["agent:manage", "admin"], sub="svc-ci")
    principal = await auth.authenticate(bearer(token))
    assert principal is not None and principal.id == "svc-ci"
    assert principal.scopes == {Scope.AGENT_MANAGE, Scope.ADMIN}


@pytest.mark.filterwarnings("ignore::joserfc.errors.SecurityWarning")
async def test_eddsa_token_is_accepted_with_the_default_algorithms(
    keys: dict, issuer: Issuer, clock: Clock
) -> None:
    issuer.keys = {**keys, "ed1": OKPKey.generate_key("Ed25519", private=True, parameters={"kid": "ed1"})}
    issuer.published = [issuer.keys["ed1"]]
    mode = make_auth(issuer, clock)
    try:
        principal = await mode.authenticate(bearer(issuer.token("ed1", alg="EdDSA")))
        assert principal is not None and principal.id == "user-42"
    finally:
        await mode.aclose()


async def test_audience_list_containing_ours_is_accepted(auth: OidcAuth, issuer: Issuer) -> None:
    principal = await auth.authenticate(bearer(issuer.token(aud=["other-api", AUDIENCE])))
    assert principal is not None


async def test_token_expired_within_the_leeway_is_accepted(auth: OidcAuth, issuer: Issuer) -> None:
    now = int(issuer.wall())
    principal = await auth.authenticate(bearer(issuer.token(exp=now - 30, iat=now - 600)))
    assert principal is not None


async def test_token_without_townhall_scopes_is_a_principal_without_permissions(
    auth: OidcAuth, issuer: Issuer
) -> None:
    principal = await auth.authenticate(bearer(issuer.token(scope="openid profile")))
    assert principal is not None and principal.scopes == frozenset()


async def test_token_without_kid_is_accepted_only_from_a_single_key_jwks(
    auth: OidcAuth, issuer: Issuer, keys: dict
) -> None:
    claims = issuer.claims()
    no_kid = jwt.encode({"alg": "RS256"}, claims, keys["rsa1"], algorithms=["RS256"])
    error = await rejected(auth, no_kid)
    assert error.description == "unknown signing key"

    issuer.published = [keys["rsa1"]]
    single = make_auth(issuer, Clock(0.0))
    try:
        principal = await single.authenticate(bearer(no_kid))
        assert principal is not None and principal.id == "user-42"
    finally:
        await single.aclose()


# --- rejected tokens -------------------------------------------------------------------------------


async def test_alg_none_is_rejected(auth: OidcAuth, issuer: Issuer) -> None:
    token = hand_made({"alg": "none", "kid": "rsa1", "typ": "JWT"}, issuer.claims())
    error = await rejected(auth, token)
    assert error.error == "invalid_token"
    assert error.description == "token algorithm not allowed"


async def test_hs256_signed_with_the_rsa_public_key_is_rejected(
    auth: OidcAuth, issuer: Issuer, keys: dict
) -> None:
    # The classic key-confusion attack: HMAC with the published public key as the secret.
    pem = keys["rsa1"].as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "kid": "rsa1", "typ": "JWT"}).encode())
    payload = b64(json.dumps(issuer.claims()).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    error = await rejected(auth, f"{header}.{payload}.{b64(signature)}")
    assert error.error == "invalid_token"
    assert error.description == "token algorithm not allowed"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.example.test"}, "wrong issuer"),
        ({"aud": "another-service"}, "wrong audience"),
        ({"aud": ["another-service", "third"]}, "wrong audience"),
        ({"exp": -120}, "token expired"),
        ({"nbf": 300}, "token not yet valid"),
        ({"exp": None}, "token lacks claim exp"),
        ({"sub": None}, "token lacks claim sub"),
        ({"aud": None}, "token lacks claim aud"),
        ({"iss": None}, "token lacks claim iss"),
    ],
)
async def test_bad_claims_are_rejected(auth: OidcAuth, issuer: Issuer, claims: dict, reason: str) -> None:
    now = int(issuer.wall())
    relative = {k: (now + v if k in ("exp", "nbf") and v is not None else v) for k, v in claims.items()}
    error = await rejected(auth, issuer.token(**relative))
    assert (error.error, error.description) == ("invalid_token", reason)


async def test_unknown_kid_is_rejected(auth: OidcAuth, issuer: Issuer) -> None:
    error = await rejected(auth, issuer.token("rogue"))
    assert (error.error, error.description) == ("invalid_token", "unknown signing key")


@pytest.mark.parametrize(("kid", "signer", "reason"), [
    ("rsa1", "rogue", "bad signature"),  # another key's signature under a known kid
    ("ec1", "rsa1", "signing key not valid for the token algorithm"),  # an RS256 header naming the EC key
])
async def test_a_token_not_signed_by_the_key_its_header_names_is_rejected(
    auth: OidcAuth, issuer: Issuer, keys: dict, kid: str, signer: str, reason: str
) -> None:
    forged = jwt.encode({"alg": "RS256", "kid": kid}, issuer.claims(), keys[signer], algorithms=["RS256"])
    error = await rejected(auth, forged)
    assert (error.error, error.description) == ("invalid_token", reason)


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "a.b.c.d.e", "é.x.y"])
async def test_malformed_bearer_values_are_rejected(auth: OidcAuth, garbage: str) -> None:
    with pytest.raises(InvalidCredentials) as info:
        await auth.authenticate(bearer(garbage))
    assert info.value.error == "invalid_token"


async def test_no_bearer_credentials_means_no_principal(auth: OidcAuth, issuer: Issuer) -> None:
    assert await auth.authenticate(AuthRequest(headers={}, client=None, path="/v1/town")) is None
    basic = AuthRequest(headers={"authorization": "Basic dXNlcjpwdw=="}, client=None, path="/v1/town")
    assert await auth.authenticate(basic) is None
    lower = AuthRequest(headers={"authorization": f"bearer {issuer.token()}"}, client=None, path="/")
    assert await auth.authenticate(lower) is not None
    assert issuer.jwks_fetches == 1


async def test_missing_required_scope_is_insufficient_scope(issuer: Issuer, clock: Clock) -> None:
    mode = make_auth(issuer, clock, required_scopes=["townhall", "town.read"])
    try:
        error = await rejected(mode, issuer.token(scope="town:read"))
        assert (error.error, error.description) == ("insufficient_scope", "token lacks required scopes")
        # "town.read" is satisfied by the colon spelling; "townhall" is an IdP-specific scope.
        principal = await mode.authenticate(bearer(issuer.token(scope=None, scp="townhall town:read")))
        assert principal is not None and principal.scopes == {Scope.TOWN_READ}
    finally:
        await mode.aclose()


async def test_a_remembered_token_still_expires(auth: OidcAuth, issuer: Issuer) -> None:
    token = issuer.token(exp=int(issuer.wall()) + 100)
    assert await auth.authenticate(bearer(token)) is not None
    issuer.wall.advance(100 + 61)  # past exp and the 60 s leeway
    error = await rejected(auth, token)
    assert error.description == "token expired"


# --- discovery and the JWKS cache ------------------------------------------------------------------


async def test_discovery_for_another_issuer_is_refused(issuer: Issuer, clock: Clock, caplog) -> None:
    issuer.discovery_issuer = "https://idp.example.test/realms/other"
    mode = make_auth(issuer, clock)
    try:
        with caplog.at_level(logging.WARNING, logger="townhall.auth"):
            error = await rejected(mode, issuer.token())
        assert error.description == "issuer signing keys unavailable"
        assert issuer.jwks_fetches == 0
        assert "expected 'https://idp.example.test/realms/town'" in caplog.text
    finally:
        await mode.aclose()


async def test_configured_jwks_url_skips_discovery(issuer: Issuer, clock: Clock) -> None:
    mode = make_auth(issuer, clock, jwks_url=issuer.jwks_uri)
    try:
        assert await mode.authenticate(bearer(issuer.token())) is not None
        assert (issuer.discovery_fetches, issuer.jwks_fetches) == (0, 1)
        error = await rejected(mode, issuer.token(iss="https://evil.example.test"))
        assert error.description == "wrong issuer"
    finally:
        await mode.aclose()


async def test_jwks_url_without_issuer_does_not_check_iss(issuer: Issuer, clock: Clock) -> None:
    mode = make_auth(issuer, clock, issuer=None, jwks_url=issuer.jwks_uri)
    try:
        assert await mode.authenticate(bearer(issuer.token(iss="https://anyone.example.test"))) is not None
        assert await mode.authenticate(bearer(issuer.token(iss=None))) is not None
        error = await rejected(mode, issuer.token(aud="someone-else"))
        assert error.description == "wrong audience"
    finally:
        await mode.aclose()


async def test_key_rotation_costs_exactly_one_refetch(
    auth: OidcAuth, issuer: Issuer, clock: Clock, keys: dict
) -> None:
    assert await auth.authenticate(bearer(issuer.token("rsa1"))) is not None
    assert issuer.jwks_fetches == 1
    clock.advance(45)  # past the 30 s cooldown, well within the 10 min TTL
    issuer.published = [keys["rsa2"], keys["ec1"]]
    tokens = [issuer.token("rsa2", sub=f"user-{i}") for i in range(5)]
    principals = await asyncio.gather(*(auth.authenticate(bearer(t)) for t in tokens))
    assert {p.id for p in principals} == {f"user-{i}" for i in range(5)}
    assert issuer.jwks_fetches == 2
    assert await auth.authenticate(bearer(issuer.token("rsa2", sub="later"))) is not None
    assert issuer.jwks_fetches == 2


async def test_a_flood_of_unknown_kids_fetches_at_most_once_per_cooldown(
    auth: OidcAuth, issuer: Issuer, clock: Clock, keys: dict
) -> None:
    claims = issuer.claims()

    def forged() -> str:
        kid = uuid.uuid4().hex
        return jwt.encode({"alg": "RS256", "kid": kid}, claims, keys["rogue"], algorithms=["RS256"])

    async def flood(n: int) -> None:
        attempts = (auth.authenticate(bearer(forged())) for _ in range(n))
        results = await asyncio.gather(*attempts, return_exceptions=True)
        assert all(isinstance(r, InvalidCredentials) for r in results)

    await flood(50)
    assert issuer.jwks_fetches == 1  # the first use; no refetch inside the cooldown
    clock.advance(10)
    await flood(50)
    assert issuer.jwks_fetches == 1
    clock.advance(25)
    await flood(50)
    assert issuer.jwks_fetches == 2
    await flood(50)
    assert issuer.jwks_fetches == 2


async def test_jwks_endpoint_down_keeps_the_old_keys(
    auth: OidcAuth, issuer: Issuer, clock: Clock, caplog
) -> None:
    await auth.start()
    assert issuer.jwks_fetches == 1
    issuer.down = True
    clock.advance(601)  # the keys are stale now
    with caplog.at_level(logging.WARNING, logger="townhall.auth"):
        assert await auth.authenticate(bearer(issuer.token("rsa1"))) is not None
        await auth.keys.settle()
        assert "keeping the previous keys" in caplog.text
        error = await rejected(auth, issuer.token("rogue"))
        assert error.description == "unknown signing key"
        assert await auth.authenticate(bearer(issuer.token("ec1"))) is not None

    issuer.down = False
    clock.advance(31)
    assert await auth.authenticate(bearer(issuer.token("rsa1", sub="after"))) is not None
    await auth.keys.settle()
    assert issuer.jwks_fetches == 2


async def test_cache_control_max_age_sets_the_ttl(auth: OidcAuth, issuer: Issuer, clock: Clock) -> None:
    issuer.cache_control = "public, max-age=3600"
    assert await auth.authenticate(bearer(issuer.token())) is not None
    clock.advance(3000)
    assert await auth.authenticate(bearer(issuer.token(sub="b"))) is not None
    await auth.keys.settle()
    assert issuer.jwks_fetches == 1
    clock.advance(700)
    assert await auth.authenticate(bearer(issuer.token(sub="c"))) is not None
    await auth.keys.settle()
    assert issuer.jwks_fetches == 2


@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        (None, 600),
        ("public, max-age=3600", 3600),
        ("max-age=5", 60),
        ("max-age=999999", 86400),
        ("no-store", 60),
        ("private", 600),
    ],
)
def test_cache_ttl_is_clamped(header: str | None, ttl: float) -> None:
    assert cache_ttl(header) == ttl


async def test_start_failure_is_logged_and_retried_lazily(issuer: Issuer, clock: Clock) -> None:
    issuer.down = True
    mode = make_auth(issuer, clock)
    try:
        await mode.start()
        issuer.down = False
        error = await rejected(mode, issuer.token())  # inside the cooldown: no new fetch
        assert error.description == "issuer signing keys unavailable"
        clock.advance(31)
        assert await mode.authenticate(bearer(issuer.token())) is not None
    finally:
        await mode.aclose()


# --- through the plugin manager, against a real HTTP issuer ----------------------------------------


@pytest.fixture
def http_issuer(keys: dict) -> Iterator[Issuer]:
    fake = Issuer(keys, issuer="http://127.0.0.1:0")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            response = fake.handle(httpx.Request("GET", fake.issuer + self.path))
            self.send_response(response.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.issuer = fake.discovery_issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


async def test_oidc_mode_from_the_entry_point_against_a_real_issuer(http_issuer: Issuer) -> None:
    registry = load_plugins().registry
    assert "oidc" in registry.auth_modes.names()
    config = town_config(issuer=http_issuer.issuer, required_scopes=["town:read"])
    mode = registry.auth_modes.get("oidc").factory(config)
    try:
        assert mode.name == "oidc"
        await mode.start()
        assert (http_issuer.discovery_fetches, http_issuer.jwks_fetches) == (1, 1)
        principal = await mode.authenticate(bearer(http_issuer.token("ec1")))
        assert principal is not None and principal.id == "user-42"
        assert principal.scopes == {Scope.TOWN_READ, Scope.TOWN_WRITE}
        error = await rejected(mode, http_issuer.token("rsa1", aud="elsewhere"))
        assert error.description == "wrong audience"
    finally:
        await mode.aclose()
