"""Auth mode ``none``: every request is the local principal with every scope."""

from __future__ import annotations

from typing import Callable

from townhall import hookimpl
from townhall.auth import ALL_SCOPES, AuthRequest, Principal
from townhall.registry import AuthModeSpec

LOCAL = Principal(id="local", scopes=ALL_SCOPES, mode="none")


class NoAuth:
    """Built from the mode's settings, of which ``none`` has none."""

    name = "none"

    def __init__(self, settings: None = None) -> None:
        pass

    async def authenticate(self, request: AuthRequest) -> Principal:
        return LOCAL


@hookimpl
def townhall_register_auth_modes(register: Callable[[AuthModeSpec], None]) -> None:
    register(AuthModeSpec(name="none", factory=NoAuth, summary="no authentication (loopback only)"))
