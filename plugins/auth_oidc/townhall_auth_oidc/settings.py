"""``[townhall.auth]`` for mode ``oidc``: the checked, immutable settings the verifier runs on."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

from townhall.config import ConfigError
from townhall_auth_oidc.urls import is_fetchable_url

#: Signature algorithms that need a public key. Symmetric (HS*) and ``none`` are refused on purpose:
#: with a public JWKS, accepting HS* would let anyone sign with the published key as the HMAC secret.
ASYMMETRIC_ALGORITHMS = frozenset(
    {
        "RS256", "RS384", "RS512",
        "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512", "ES256K",
        "EdDSA", "Ed25519", "Ed448",
    }
)  # fmt: skip

# RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\'.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class OidcConfig(msgspec.Struct, kw_only=True):
    """The keys of ``[townhall.auth]`` mode ``oidc`` reads (its ``config_type``), as written."""

    issuer: str | None = None
    audience: str | None = None
    jwks_url: str | None = None
    required_scopes: list[str] = []
    clock_skew_seconds: Annotated[int, msgspec.Meta(ge=0)] = 60
    algorithms: list[str] = msgspec.field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
    )


class OidcSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the verifier needs; ``issuer`` is ``None`` only when a ``jwks_url`` is configured."""

    issuer: str | None
    audience: str
    jwks_url: str | None
    algorithms: frozenset[str]
    required_scopes: frozenset[str]
    leeway_seconds: int

    @property
    def discovery_url(self) -> str | None:
        if self.issuer is None:
            return None
        # OpenID Connect Discovery §4: strip a trailing slash, then append the well-known path.
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def checked_settings(auth: OidcConfig) -> OidcSettings:
    """Check ``[townhall.auth]`` for mode ``oidc``; raise :class:`ConfigError` with one line."""
    issuer = (auth.issuer or "").strip() or None
    jwks_url = (auth.jwks_url or "").strip() or None
    audience = (auth.audience or "").strip()
    if issuer is None and jwks_url is None:
        raise ConfigError(
            "townhall: auth mode 'oidc' needs [townhall.auth] issuer (or jwks_url) to find the signing keys"
        )
    if not audience:
        raise ConfigError(
            "townhall: auth mode 'oidc' needs [townhall.auth] audience (tokens issued for other "
            "services must not be accepted)"
        )
    if jwks_url is not None:
        _require_fetchable_url("jwks_url", jwks_url)
    elif issuer is not None:
        _require_fetchable_url("issuer", issuer)
    if not auth.algorithms:
        raise ConfigError("townhall: [townhall.auth] algorithms must not be empty for auth mode 'oidc'")
    refused = [alg for alg in auth.algorithms if alg not in ASYMMETRIC_ALGORITHMS]
    if refused:
        allowed = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
        raise ConfigError(
            f"townhall: [townhall.auth] algorithms: {', '.join(refused)} not allowed for oidc "
            f"(only asymmetric algorithms: {allowed})"
        )
    bad_scopes = [s for s in auth.required_scopes if not _SCOPE_TOKEN.fullmatch(s)]
    if bad_scopes:
        raise ConfigError(
            f"townhall: [townhall.auth] required_scopes: {bad_scopes[0]!r} is not a valid OAuth scope "
            "(printable ASCII, no spaces or quotes)"
        )
    return OidcSettings(
        issuer=issuer,
        audience=audience,
        jwks_url=jwks_url,
        algorithms=frozenset(auth.algorithms),
        required_scopes=frozenset(auth.required_scopes),
        leeway_seconds=auth.clock_skew_seconds,
    )


def _require_fetchable_url(key: str, url: str) -> None:
    if not is_fetchable_url(url):
        raise ConfigError(
            f"townhall: [townhall.auth] {key} must be an https:// URL (http:// only for loopback), got {url!r}"
        )
