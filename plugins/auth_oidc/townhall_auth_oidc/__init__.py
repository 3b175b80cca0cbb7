"""Townhall plugin townhall-auth-oidc: auth mode ``oidc`` (Bearer JWTs checked against the issuer's JWKS)."""

from __future__ import annotations

from typing import Callable

from townhall import hookimpl
from townhall.registry import AuthModeSpec
from townhall_auth_oidc.settings import OidcConfig
from townhall_auth_oidc.verifier import OidcAuth

__all__ = ["OidcAuth", "OidcConfig"]


@hookimpl
def townhall_register_auth_modes(register: Callable[[AuthModeSpec], None]) -> None:
    register(
        AuthModeSpec(
            name="oidc",
            factory=OidcAuth.from_config,
            config_type=OidcConfig,
            summary="Bearer JWTs from an OpenID Connect issuer, checked against its JWKS",
        )
    )
