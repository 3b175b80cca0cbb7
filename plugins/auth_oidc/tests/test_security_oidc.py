"""Issue 14 items 4 and 8 against a real townhall in mode ``oidc``: discovered key URLs follow the
https/loopback rule, and malformed time claims are a 401, never a 500."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from joserfc import jws

from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import append_config, write_town
from townhall_auth_oidc.testing import AUDIENCE, DISCOVERY_PATH, LocalIssuer, json_server, oidc_toml
from townhall_auth_oidc.urls import is_fetchable_url
from townhall_auth_oidc.verifier import is_numeric_date

RELAXED_LIMITS = "[townhall.rate_limit]\nburst_size = 1000\n"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- item 4: a discovery document pointing at plain http on another host ----------------------------


def _non_loopback_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            pytest.skip("no non-loopback interface")
        address = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("no non-loopback interface")
    return address


class SplitIssuer:
    """An issuer on loopback (allowed over http) whose discovery document names a JWKS over plain http
    on a non-loopback address of the same machine — what an on-path attacker would substitute."""

    def __init__(self, keys: LocalIssuer) -> None:
        self.jwks_fetches = 0
        self._keys = keys
        self._server = json_server("0.0.0.0", self._answer)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.jwks_uri = f"http://{_non_loopback_address()}:{port}/jwks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _answer(self, path: str) -> dict[str, Any] | None:
        if path == DISCOVERY_PATH:
            return {"issuer": self.url, "jwks_uri": self.jwks_uri}
        if path == "/jwks":
            self.jwks_fetches += 1
            return self._keys.jwks()
        return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        yield running


def test_a_discovered_plain_http_jwks_uri_on_another_host_is_refused(tmp_path: Path, redis_url: str,
                                                                     issuer: LocalIssuer) -> None:
    split = SplitIssuer(issuer)
    try:
        write_town(tmp_path, f"t{uuid.uuid4().hex[:10]}", redis_url=redis_url)
        append_config(tmp_path, "\n".join([
            "[townhall.auth]", 'mode = "oidc"', f'issuer = "{split.url}"', f'audience = "{AUDIENCE}"', "",
        ]) + RELAXED_LIMITS)
        proc = TownhallProcess(tmp_path).start()
        try:
            response = httpx.get(f"{proc.url}/v1/status", headers=bearer(issuer.token(iss=split.url)), timeout=10)
            assert response.status_code == 401, response.text
            assert 'error="invalid_token"' in response.headers["www-authenticate"]
            assert split.jwks_fetches == 0  # the attacker's keys were never even downloaded
            assert f"jwks_uri '{split.jwks_uri}', which is not https://" in proc.output()
        finally:
            proc.stop()
    finally:
        split.close()


@pytest.mark.parametrize(
    ("url", "fetchable"),
    [
        ("https://idp.example/jwks", True),
        ("http://127.0.0.1:8080/jwks", True),
        ("http://[::1]:8080/jwks", True),
        ("http://localhost/jwks", True),
        ("http://idp.example/jwks", False),
        ("http://10.0.0.1/jwks", False),
        ("http://localhost.evil.example/jwks", False),
        ("ftp://idp.example/jwks", False),
        ("https:///jwks", False),
        ("http://[::1/jwks", False),
    ],
)
def test_the_key_url_rule(url: str, fetchable: bool) -> None:
    assert is_fetchable_url(url) is fetchable


# --- item 8: malformed numeric claims ---------------------------------------------------------------


@pytest.fixture(scope="module")
def townhall_oidc(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
                  issuer: LocalIssuer) -> Iterator[TownhallProcess]:
    if not redis_server.running:
        redis_server.start()
    root = tmp_path_factory.mktemp("oidc-claims")
    write_town(root, f"t{uuid.uuid4().hex[:10]}", redis_url=redis_server.url)
    append_config(root, oidc_toml(issuer) + RELAXED_LIMITS)
    proc = TownhallProcess(root).start()
    yield proc
    proc.stop()


def _signed(issuer: LocalIssuer, claim: str, raw_value: str) -> str:
    """A correctly signed token whose ``claim`` is the literal JSON text ``raw_value`` (json.dumps cannot
    write 1e400 or a 400-digit number the way an attacker can)."""
    claims = issuer.claims()
    claims[claim] = "@@VALUE@@"
    payload = json.dumps(claims).replace('"@@VALUE@@"', raw_value)
    key = issuer.keys["rsa1"]
    return jws.serialize_compact({"alg": "RS256", "kid": "rsa1", "typ": "JWT"}, payload.encode(), key,
                                 algorithms=["RS256"])


MALFORMED = ["1" + "0" * 400, "1e400", "-1e400", "NaN", "Infinity", "-1", '"9999999999"', "true", "false",
             "null", "[1]", "{}", "1e300", "253402300800"]


@pytest.mark.parametrize("raw_value", MALFORMED)
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_malformed_time_claims_get_401_invalid_token(townhall_oidc: TownhallProcess, issuer: LocalIssuer,
                                                     claim: str, raw_value: str) -> None:
    response = httpx.get(f"{townhall_oidc.url}/v1/status", headers=bearer(_signed(issuer, claim, raw_value)),
                         timeout=10)
    assert response.status_code == 401, (claim, raw_value, response.status_code, response.text[:200])
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge, challenge


def test_a_well_formed_token_is_still_accepted(townhall_oidc: TownhallProcess, issuer: LocalIssuer) -> None:
    token = _signed(issuer, "nbf", str(issuer.claims()["iat"]) + ".5")  # a fractional NumericDate is valid
    assert httpx.get(f"{townhall_oidc.url}/v1/status", headers=bearer(token), timeout=10).status_code == 200


@pytest.mark.parametrize(("value", "ok"), [(0, True), (1.5, True), (253_402_300_799, True), (True, False),
                                           (-1, False), (float("nan"), False), (float("inf"), False),
                                           (10**400, False), ("1", False), (None, False)])
def test_numeric_date_rule(value: object, ok: bool) -> None:
    assert is_numeric_date(value) is ok
