"""Who is calling: principals, scopes and the protocol an auth-mode plugin implements."""

from __future__ import annotations

import enum
from typing import Mapping, Protocol

import msgspec


class Scope(str, enum.Enum):
    TOWN_READ = "town.read"
    TOWN_WRITE = "town.write"
    AGENT_MANAGE = "agent.manage"
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)


class Principal(msgspec.Struct, frozen=True):
    """An authenticated caller. ``id`` names it in the audit log and keys its rate limit."""

    id: str
    scopes: frozenset[Scope]
    mode: str = "none"

    def has(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


class AuthRequest(msgspec.Struct, frozen=True):
    """What an auth mode sees of a request: lower-cased header names, the client address, the path."""

    headers: Mapping[str, str]
    client: str | None
    path: str


class InvalidCredentials(Exception):
    """Credentials were presented but are not acceptable (401 with ``WWW-Authenticate``).

    ``error`` follows RFC 6750 (``invalid_token``, ``invalid_request``); ``description`` is shown to
    the client, so it must never contain the credential itself.
    """

    def __init__(self, description: str = "Invalid credentials", error: str = "invalid_token") -> None:
        super().__init__(description)
        self.description = description
        self.error = error


class AuthBusy(InvalidCredentials):
    """The mode cannot check credentials right now (too much verification work queued): the core
    answers 429 with ``Retry-After`` instead of 401, so a flood of bad keys cannot run the CPU hot."""

    def __init__(self, description: str = "Too many authentication attempts, retry later",
                 retry_after: int = 1) -> None:
        super().__init__(description, error="temporarily_unavailable")
        self.retry_after = retry_after


class AuthMode(Protocol):
    """What an auth-mode plugin's factory returns."""

    name: str

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        """Return the caller, ``None`` when no credentials were sent, or raise ``InvalidCredentials``.

        Optional extras the core calls when present: ``async start()`` at app startup (warm caches;
        must not fail hard) and ``async aclose()`` at shutdown.
        """
        ...


def parse_scopes(values: list[str] | None) -> frozenset[Scope]:
    """Config scope lists: empty means every scope (the reference's rule for ``api_key_scopes``)."""
    if not values:
        return ALL_SCOPES
    return frozenset(Scope(v) for v in values)
