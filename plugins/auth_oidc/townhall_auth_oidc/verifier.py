"""Auth mode ``oidc``: a Bearer JWT from an OpenID Connect / OAuth 2 issuer becomes a Principal."""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Mapping

import httpx
import msgspec
from cachetools import TLRUCache
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jws import JWSRegistry

from townhall.auth import AuthRequest, InvalidCredentials, Principal
from townhall_auth_oidc.jwks import JwksCache, JwksFetcher
from townhall_auth_oidc.scopes import normalize_scope, token_scopes, townhall_scopes
from townhall_auth_oidc.settings import OidcConfig, OidcSettings, checked_settings

MAX_TOKEN_CHARS = 16 * 1024
MAX_SUBJECT_CHARS = 255
#: A verified token is remembered at most this long (and never past its ``exp``).
VERIFIED_TTL = 300.0
VERIFIED_CACHE_SIZE = 10_000
#: The time claims, RFC 7519 §2 NumericDate: a JSON number of seconds since the epoch.
TIME_CLAIMS = ("exp", "nbf", "iat")
#: 9999-12-31T23:59:59Z: anything later is an attack on float()/datetime, not a real expiry.
MAX_NUMERIC_DATE = 253_402_300_799

_CLAIM_PROBLEMS = {
    "iss": "wrong issuer",
    "aud": "wrong audience",
    "nbf": "token not yet valid",
    "iat": "token issued in the future",
    "exp": "invalid expiry",
    "sub": "invalid subject",
}


class _Verified(msgspec.Struct, frozen=True):
    principal: Principal
    expires_at: float


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header; ``None`` when there is no such header.

    The scheme name is case-insensitive (RFC 7235 §2.1); other schemes are not ours and count as no
    credentials.
    """
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


class OidcAuth:
    """Checks Bearer JWTs against the issuer's JWKS; see ``docs/auth-oidc.md``.

    Besides :meth:`authenticate` (the :class:`townhall.auth.AuthMode` protocol) it offers
    :meth:`start` (optional warm-up at application startup) and :meth:`aclose` (shutdown).
    """

    name = "oidc"

    def __init__(
        self, settings: OidcSettings, keys: JwksCache, *, now: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.keys = keys
        self._now = now
        self._registry = JWSRegistry(algorithms=sorted(settings.algorithms), strict_check_header=False)
        self._required = frozenset(normalize_scope(s) for s in settings.required_scopes)
        self._verified: TLRUCache[bytes, _Verified] = TLRUCache(
            maxsize=VERIFIED_CACHE_SIZE,
            ttu=lambda _key, item, now: min(item.expires_at, now + VERIFIED_TTL),
            timer=now,
        )

    @classmethod
    def from_config(
        cls,
        config: OidcConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> OidcAuth:
        """The registered factory; ``transport``, ``clock`` and ``now`` exist for tests."""
        settings = checked_settings(config)
        keys = JwksCache(JwksFetcher(settings, transport=transport), clock=clock)
        return cls(settings, keys, now=now)

    async def start(self) -> None:
        """Fetch the signing keys now instead of on the first request; a failure is only logged."""
        await self.keys.refresh()

    async def aclose(self) -> None:
        await self.keys.aclose()

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        token = bearer_token(request.headers)
        if token is None:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        hit = self._verified.get(digest)
        if hit is not None:
            return hit.principal
        verified = await self._verify(token)
        self._verified[digest] = verified
        return verified.principal

    async def _verify(self, token: str) -> _Verified:
        if not token:
            raise InvalidCredentials("empty bearer token")
        if len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise InvalidCredentials("malformed token")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError):
            raise InvalidCredentials("malformed token") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            raise InvalidCredentials("token algorithm not allowed")
        if kid is not None and not isinstance(kid, str):
            raise InvalidCredentials("malformed token")
        key = await self.keys.key_for(kid)
        if key is None:
            reason = "unknown signing key" if self.keys.loaded else "issuer signing keys unavailable"
            raise InvalidCredentials(reason)
        if key.alg is not None and key.alg != alg:
            raise InvalidCredentials("signing key not valid for the token algorithm")
        try:
            claims = jwt.decode(token, key, registry=self._registry).claims
        except BadSignatureError:
            raise InvalidCredentials("bad signature") from None
        except (JoseError, ValueError, TypeError):
            raise InvalidCredentials("invalid token") from None
        self._check_claims(claims)
        scopes = token_scopes(claims)
        if not self._required <= scopes:
            raise InvalidCredentials("token lacks required scopes", error="insufficient_scope")
        principal = Principal(id=claims["sub"], scopes=townhall_scopes(scopes), mode=self.name)
        return _Verified(principal=principal, expires_at=float(claims["exp"]))

    def _check_claims(self, claims: dict[str, Any]) -> None:
        for name in TIME_CLAIMS:
            if name in claims and not is_numeric_date(claims[name]):
                raise InvalidCredentials(f"malformed {name} claim")
        options: dict[str, Any] = {
            "exp": {"essential": True},
            "sub": {"essential": True},
            "aud": {"essential": True, "value": self.settings.audience},
        }
        if self.settings.issuer is not None:
            options["iss"] = {"essential": True, "value": self.settings.issuer}
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._now()), leeway=self.settings.leeway_seconds, **options
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidCredentials("token expired") from None
        except MissingClaimError as exc:
            raise InvalidCredentials(f"token lacks claim {exc.claim}") from None
        except ClaimError as exc:
            raise InvalidCredentials(_CLAIM_PROBLEMS.get(exc.claim, "invalid token claims")) from None
        if len(claims["sub"]) > MAX_SUBJECT_CHARS:
            raise InvalidCredentials("invalid subject")


def is_numeric_date(value: object) -> bool:
    """A non-negative, finite number of seconds up to year 9999; ``bool`` is not a number here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return 0 <= value <= MAX_NUMERIC_DATE  # NaN fails both comparisons
