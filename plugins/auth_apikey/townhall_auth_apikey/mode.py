"""Auth mode ``api_key``: the caller presents a key in ``Authorization: Bearer`` or ``X-API-Key``."""

from __future__ import annotations

import re
from typing import Mapping

from townhall.auth import AuthRequest, Principal

from townhall_auth_apikey.keyset import ApiKeyConfig, load_keys
from townhall_auth_apikey.verifier import KeyVerifier

BEARER = "Bearer "


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries, by the reference's rules (§7.2); ``None`` when it carries none.

    ``Authorization`` counts only when it starts with exactly ``Bearer `` (case-sensitive, one space);
    any other value is ignored rather than rejected, so e.g. Basic auth for a proxy does not break
    ``X-API-Key``. A Bearer key wins over ``X-API-Key``. Headers that are not visible ASCII are ignored.
    An empty value is still a (wrong) key.
    """
    authorization = headers.get("authorization")
    if authorization is not None and _visible_ascii(authorization) and authorization.startswith(BEARER):
        return authorization[len(BEARER):].strip()
    api_key = headers.get("x-api-key")
    if api_key is not None and _visible_ascii(api_key):
        return api_key.strip()
    return None


# Tab, space and the printable ASCII characters; one C scan per header (a Python loop per character
# was a tenth of an authenticated request's cost).
_VISIBLE_ASCII = re.compile(r"[\t -~]*")


def _visible_ascii(value: str) -> bool:
    return _VISIBLE_ASCII.fullmatch(value) is not None


class ApiKeyAuth:
    """Turns a presented key into ``Principal(id=<key id>, scopes=<key scopes>, mode="api_key")``."""

    name = "api_key"

    def __init__(self, verifier: KeyVerifier) -> None:
        self.verifier = verifier

    @classmethod
    def from_config(cls, settings: ApiKeyConfig) -> ApiKeyAuth:
        """The mode factory: checks the key set of ``[townhall.auth]`` (``ConfigError`` on a bad one)."""
        return cls(KeyVerifier(load_keys(settings)))

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        key = presented_key(request.headers)
        if key is None:
            return None
        match = await self.verifier.match(key, request.client)
        return Principal(id=match.id, scopes=match.scopes, mode=self.name)
