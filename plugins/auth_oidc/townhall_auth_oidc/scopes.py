"""Token scopes (``scope`` / ``scp`` claims) and how they map onto townhall scopes."""

from __future__ import annotations

from typing import Any

from townhall.auth import Scope

# IdPs differ in which separator they allow in scope names (some reject '.'), so the colon spelling
# of every townhall scope is accepted too.
_TOWNHALL_SPELLINGS: dict[str, Scope] = {}
for _scope in Scope:
    _TOWNHALL_SPELLINGS[_scope.value] = _scope
    _TOWNHALL_SPELLINGS[_scope.value.replace(".", ":")] = _scope


def normalize_scope(value: str) -> str:
    """``town:read`` → ``town.read``; any other scope is returned unchanged."""
    scope = _TOWNHALL_SPELLINGS.get(value)
    return scope.value if scope is not None else value


def token_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """Every scope the token carries, normalized.

    ``scope`` is a space-separated string (RFC 8693, RFC 9068); ``scp`` is a list (Okta, Azure AD) or
    a space-separated string. Both are read when both are present. Values of the wrong type count as
    no scopes rather than an error: a token without usable scopes simply has no permissions.
    """
    found: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    found.update(item.split())
    return frozenset(normalize_scope(s) for s in found)


def townhall_scopes(scopes: frozenset[str]) -> frozenset[Scope]:
    """The townhall scopes among normalized token scopes; other scopes grant nothing here."""
    return frozenset(Scope(s) for s in scopes if s in _TOWNHALL_SPELLINGS)
