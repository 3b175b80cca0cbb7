"""Auth mode ``oidc`` refuses unsafe or incomplete configuration at startup, with one line."""

from __future__ import annotations

from typing import Any

import pytest

from townhall.config import ConfigError, read_toml, table_config
from townhall.starter_config import starter_config
from townhall_auth_oidc import OidcAuth, OidcConfig


def town(**auth: Any) -> OidcConfig:
    settings = {"issuer": "https://idp.example.test", "audience": "townhall", **auth}
    return OidcConfig(**settings)


@pytest.mark.parametrize(
    ("auth", "fragment"),
    [
        ({"issuer": None}, "needs [townhall.auth] issuer (or jwks_url)"),
        ({"issuer": "  "}, "needs [townhall.auth] issuer (or jwks_url)"),
        ({"audience": None}, "needs [townhall.auth] audience"),
        ({"algorithms": ["RS256", "HS256"]}, "HS256 not allowed"),
        ({"algorithms": ["none"]}, "none not allowed"),
        ({"algorithms": []}, "algorithms must not be empty"),
        ({"issuer": "http://idp.example.test"}, "issuer must be an https:// URL"),
        ({"jwks_url": "ftp://idp.example.test/keys"}, "jwks_url must be an https:// URL"),
        ({"required_scopes": ["town read"]}, "required_scopes: 'town read' is not a valid OAuth scope"),
    ],
)
def test_bad_configuration_is_one_clear_line(auth: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        OidcAuth.from_config(town(**auth))
    message = str(info.value)
    assert message.startswith("townhall: ") and "\n" not in message
    assert fragment in message


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"issuer": None, "jwks_url": "https://idp.example.test/keys"},
        {"issuer": "http://127.0.0.1:8081/realms/x"},
        {"issuer": "http://localhost:8081"},
        {"issuer": "urn:not-fetched", "jwks_url": "https://idp.example.test/keys"},
        {"algorithms": ["ES256", "PS256", "EdDSA"], "required_scopes": ["town:read", "api://th/x"]},
    ],
)
def test_good_configuration_builds_the_mode(auth: dict) -> None:
    mode = OidcAuth.from_config(town(**auth))
    assert mode.name == "oidc"


def test_the_starter_config_gives_the_default_clock_skew() -> None:
    settings = table_config(read_toml(starter_config("demo")), "townhall.auth", OidcConfig)
    assert settings.clock_skew_seconds == 60
