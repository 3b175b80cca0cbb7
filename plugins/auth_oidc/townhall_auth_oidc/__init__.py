"""Townhall plugin townhall-auth-oidc: auth mode ``oidc`` (Bearer JWTs checked against the issuer's JWKS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from townhall import hookimpl
from townhall.registry import AuthModeSpec
from townhall_auth_oidc.settings import OidcConfig

if TYPE_CHECKING:
    from townhall_auth_oidc.verifier import OidcAuth

__all__ = ["OidcAuth", "OidcConfig"]


# The verifier and its JOSE stack are imported when the mode is used, not whenever plugins load: every
# `tt` command loads them, and the import was a fifth of a second of each.
def __getattr__(name: str) -> Any:
    if name == "OidcAuth":
        from townhall_auth_oidc.verifier import OidcAuth

        return OidcAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _oidc_auth(settings: OidcConfig) -> OidcAuth:
    from townhall_auth_oidc.verifier import OidcAuth

    return OidcAuth.from_config(settings)


@hookimpl
def townhall_register_auth_modes(register: Callable[[AuthModeSpec], None]) -> None:
    register(
        AuthModeSpec(
            name="oidc",
            factory=_oidc_auth,
            config_type=OidcConfig,
            summary="Bearer JWTs from an OpenID Connect issuer, checked against its JWKS",
        )
    )
