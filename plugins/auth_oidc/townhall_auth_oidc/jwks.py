"""The issuer's signing keys: discovery, JWKS download, and the cache in front of them.

Keys are fetched with ``httpx.AsyncClient`` (the event loop never blocks), lazily on first use or by
:meth:`JwksCache.refresh` at startup. The cache keeps them for the response's ``Cache-Control: max-age``
(clamped to 60 s … 24 h, 10 min without one). A token signed with an unknown ``kid`` triggers one
refetch, but never more than one per cooldown (30 s) and never two at once, so a flood of forged kids
cannot turn townhall into a load generator against the IdP. When a fetch fails the previous keys stay
in use and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Callable

import httpx
import msgspec
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from townhall_auth_oidc.settings import OidcSettings
from townhall_auth_oidc.urls import is_fetchable_url

log = logging.getLogger("townhall.auth")

PublicKey = RSAKey | ECKey | OKPKey

DEFAULT_TTL = 600.0
MIN_TTL = 60.0
MAX_TTL = 86400.0
REFETCH_COOLDOWN = 30.0
FETCH_TIMEOUT = 5.0
MAX_DOCUMENT_BYTES = 1024 * 1024

_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


class KeyFetchError(Exception):
    """Discovery or the JWKS download failed; the message is safe to log."""


class DiscoveryDocument(msgspec.Struct):
    issuer: str
    jwks_uri: str


class JwksDocument(msgspec.Struct):
    keys: list[dict[str, Any]]


class KeyBatch(msgspec.Struct, frozen=True):
    """One successful download: verification keys by ``kid`` (``None`` for a key without one)."""

    keys: dict[str | None, Any]
    ttl: float


class JwksFetcher:
    """Finds the JWKS URL (configured, or from the issuer's discovery document) and downloads it."""

    def __init__(self, settings: OidcSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._jwks_url = settings.jwks_url

    async def fetch(self) -> KeyBatch:
        url = self._jwks_url or await self._discover()
        response = await self._get(url)
        document = _decode(response, JwksDocument, url)
        keys = _import_keys(document.keys, url)
        if not keys:
            raise KeyFetchError(f"JWKS at {url} has no usable signing keys")
        return KeyBatch(keys=keys, ttl=cache_ttl(response.headers.get("cache-control")))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _discover(self) -> str:
        url = self._settings.discovery_url
        assert url is not None and self._settings.issuer is not None  # settings guarantee one source
        document = _decode(await self._get(url), DiscoveryDocument, url)
        # OpenID Connect Discovery §4.3: a document for another issuer must not be used.
        if document.issuer != self._settings.issuer:
            raise KeyFetchError(
                f"discovery document at {url} names issuer {document.issuer!r}, "
                f"expected {self._settings.issuer!r}"
            )
        # The same rule as for a configured jwks_url: an on-path attacker must not supply the keys.
        if not is_fetchable_url(document.jwks_uri):
            raise KeyFetchError(
                f"discovery document at {url} has jwks_uri {document.jwks_uri!r}, which is not "
                "https:// (http:// only for loopback); refusing to fetch signing keys from it"
            )
        self._jwks_url = document.jwks_uri
        return document.jwks_uri

    async def _get(self, url: str) -> httpx.Response:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=FETCH_TIMEOUT, transport=self._transport, headers={"Accept": "application/json"}
            )
        try:
            response = await self._client.get(url)
        except httpx.HTTPError as exc:
            raise KeyFetchError(f"GET {url} failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise KeyFetchError(f"GET {url} returned HTTP {response.status_code}")
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise KeyFetchError(f"GET {url} returned more than {MAX_DOCUMENT_BYTES} bytes")
        return response


def _decode(response: httpx.Response, kind: type[Any], url: str) -> Any:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except msgspec.DecodeError as exc:
        raise KeyFetchError(f"{url} is not a valid {kind.__name__}: {exc}") from None


def _import_keys(entries: list[dict[str, Any]], url: str) -> dict[str | None, Any]:
    keys: dict[str | None, Any] = {}
    for entry in entries:
        kid = entry.get("kid")
        # Encryption keys and symmetric keys never verify a signature here (a published "oct" key
        # would be a secret anyone can read).
        if entry.get("use", "sig") != "sig" or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if kid is not None and not isinstance(kid, str):
            continue
        try:
            key = import_key(entry)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            log.warning("oidc: skipping unreadable key %r in %s: %s", kid, url, type(exc).__name__)
            continue
        if kid in keys:
            log.warning("oidc: duplicate key id %r in %s; keeping the first", kid, url)
            continue
        keys[kid] = key
    return keys


def cache_ttl(cache_control: str | None) -> float:
    """Seconds to keep a JWKS, from its ``Cache-Control`` header, clamped to [60 s, 24 h]."""
    if not cache_control:
        return DEFAULT_TTL
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return MIN_TTL
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return DEFAULT_TTL
    return min(max(float(match.group(1)), MIN_TTL), MAX_TTL)


class JwksCache:
    """Signing keys by ``kid`` with TTL, cooldown-limited refetch on an unknown ``kid``, single flight."""

    def __init__(
        self,
        fetcher: JwksFetcher,
        *,
        clock: Callable[[], float] = time.monotonic,
        cooldown: float = REFETCH_COOLDOWN,
    ) -> None:
        self._fetcher = fetcher
        self._clock = clock
        self._cooldown = cooldown
        self._keys: dict[str | None, Any] | None = None
        self._expires_at = 0.0
        self._last_attempt: float | None = None
        self._lock = asyncio.Lock()
        self._background: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        """Whether any fetch has ever succeeded."""
        return self._keys is not None

    async def key_for(self, kid: str | None) -> PublicKey | None:
        """The key for ``kid``; a token without ``kid`` matches only when the JWKS has exactly one key."""
        if self._keys is None or self._lookup(kid) is None:
            async with self._lock:
                # Another request may have fetched while this one waited for the lock.
                if self._lookup(kid) is None and self._cooled_down():
                    await self._fetch_locked(reason="unknown key id" if self._keys else "first use")
        elif self._clock() >= self._expires_at:
            # Stale but known: answer now with the current keys and refresh behind the request.
            self._refresh_in_background()
        return self._lookup(kid)

    async def refresh(self) -> bool:
        """Fetch now regardless of TTL and cooldown (startup warm-up); ``True`` if it succeeded."""
        async with self._lock:
            return await self._fetch_locked(reason="warm-up")

    async def settle(self) -> None:
        """Wait for a background refresh, if one is running (shutdown, tests)."""
        task = self._background
        if task is not None:
            await asyncio.shield(task)

    async def aclose(self) -> None:
        task, self._background = self._background, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self._fetcher.aclose()

    def _lookup(self, kid: str | None) -> PublicKey | None:
        if self._keys is None:
            return None
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _cooled_down(self) -> bool:
        return self._last_attempt is None or self._clock() - self._last_attempt >= self._cooldown

    def _refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.get_running_loop().create_task(self._refresh_stale())

    async def _refresh_stale(self) -> None:
        async with self._lock:
            if self._clock() < self._expires_at or not self._cooled_down():
                return
            await self._fetch_locked(reason="expired")

    async def _fetch_locked(self, reason: str) -> bool:
        self._last_attempt = self._clock()
        try:
            batch = await self._fetcher.fetch()
        except KeyFetchError as exc:
            kept = "keeping the previous keys" if self._keys else "no keys available yet"
            log.warning("oidc: signing key fetch failed (%s): %s; %s", reason, exc, kept)
            return False
        except Exception:  # never let a refresh bug take authentication down with it
            log.exception("oidc: signing key fetch failed unexpectedly (%s)", reason)
            return False
        self._keys = batch.keys
        self._expires_at = self._clock() + batch.ttl
        log.info("oidc: loaded %d signing key(s) (%s), cached for %d s", len(batch.keys), reason, batch.ttl)
        return True
