"""Auth mode ``api_key`` over HTTP against a real townhall process: reference §11.1 scenarios 13, 21 and
22 (a generated key verifies with argon2-cffi and with townhall; the key in either header)."""

from __future__ import annotations

import textwrap
from typing import Callable

import httpx
import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError

from townhall.auth import Scope
from townhall.testing.process import TownhallProcess, run_cli
from townhall_auth_apikey import REFERENCE_PARAMETERS
from townhall_auth_apikey.testing import api_keys_toml, make_key

Serve = Callable[..., TownhallProcess]


def value_after(lines: list[str], heading: str) -> str:
    return lines[lines.index(heading) + 1]


# --- §11.1 scenario 13: a generated key verifies (with argon2-cffi and with townhall) ----------------


def test_13_generated_key_verifies_with_argon2_and_with_townhall(serve: Serve) -> None:
    result = run_cli("auth", "gen-key", program="tt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Read the way the original's Docker entrypoint does: the line after each heading.
    key = value_after(lines, "API Key (store securely, shown only once):")
    phc = value_after(lines, "API Key Hash (add to tinytown.toml):")
    assert len(key) >= 32 and phc.startswith("$argon2")
    reference = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16,
                               type=Type.ID)
    assert reference.verify(phc, key)
    with pytest.raises(VerifyMismatchError):
        reference.verify(phc, "wrong-key")
    assert not reference.check_needs_rehash(phc)
    # The printed snippet, pasted as told, is a working configuration.
    snippet = lines[lines.index("Add to your tinytown.toml:") + 2: lines.index("Then use the API key with townhall:")]
    proc = serve(textwrap.dedent("\n".join(snippet)))
    assert httpx.get(f"{proc.url}/v1/status", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert httpx.get(f"{proc.url}/v1/status", headers={"Authorization": "Bearer wrong-key"}).status_code == 401


# --- scenarios 21 and 22: the key in either header ---------------------------------------------------


def test_21_protected_routes_require_the_key(serve: Serve) -> None:
    key = make_key("default", Scope.ADMIN, parameters=REFERENCE_PARAMETERS)
    proc = serve(f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{key.hash}"\n')
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        missing = client.get("/v1/status")
        wrong = client.get("/v1/status", headers={"Authorization": "Bearer wrong-key"})
        right = client.get("/v1/status", headers=key.bearer())
    assert missing.status_code == 401 and missing.json()["detail"] == "Authentication required"
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Invalid credentials"
    assert wrong.headers["www-authenticate"] == (
        'Bearer realm="townhall", error="invalid_token", error_description="Invalid credentials"')
    assert right.status_code == 200 and right.json()["agent_count"] == 0


def test_22_x_api_key_header(serve: Serve) -> None:
    key = make_key("default-ish", Scope.TOWN_READ)
    proc = serve(api_keys_toml([key]))
    with httpx.Client(base_url=proc.url, timeout=10) as client:
        assert client.get("/v1/town", headers={"X-API-Key": key.key}).status_code == 200
        # Bearer wins over X-API-Key; a non-Bearer Authorization is ignored, not an error.
        assert client.get("/v1/town", headers={"X-API-Key": key.key, "Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/v1/town", headers={"X-API-Key": key.key, "Authorization": "Basic Zm9vOmJhcg=="}).status_code == 200
