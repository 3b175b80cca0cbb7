"""The configured API keys: read from ``[townhall.auth]``, checked once at startup."""

from __future__ import annotations

import logging
import re
from typing import Annotated

import msgspec
from argon2 import Type, extract_parameters
from argon2.exceptions import InvalidHashError

from townhall.auth import Scope, parse_scopes
from townhall.config import ConfigError

log = logging.getLogger("townhall.auth")

#: The key id given to the single ``api_key_hash`` of the reference's config layout.
DEFAULT_KEY_ID = "default"

# extract_parameters() only reads the parameter segment; the salt and digest must be base64 too.
_PHC = re.compile(
    r"^\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$"
)

# OWASP's floor for Argon2id (and what `tt auth gen-key` produces): m=19 MiB with t=2, or more memory
# per pass with fewer passes.
MIN_MEMORY_KIB = 19456
MIN_WORK = MIN_MEMORY_KIB * 2


class ApiKeyEntry(msgspec.Struct, kw_only=True):
    """One ``[[townhall.auth.api_keys]]`` entry."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    hash: str
    scopes: list[str] = []


class ApiKeyConfig(msgspec.Struct, kw_only=True):
    """The keys of ``[townhall.auth]`` mode ``api_key`` reads (its ``config_type``)."""

    api_key_hash: str | None = None
    api_key_scopes: list[str] = []
    api_keys: list[ApiKeyEntry] = []


class ConfiguredKey(msgspec.Struct, frozen=True):
    """One accepted key: its public id (audit log, rate limit), its Argon2 PHC hash and its scopes."""

    id: str
    hash: str
    scopes: frozenset[Scope]


def load_keys(auth: ApiKeyConfig) -> list[ConfiguredKey]:
    """Every key of ``[townhall.auth]``; raises ``ConfigError`` with one line for a bad key set."""
    entries: list[tuple[str, str, list[str]]] = []
    if auth.api_key_hash:
        if not auth.api_key_scopes:
            # The original's rule, kept for compatibility: said out loud, since it grants everything.
            log.warning(
                "API key '%s' (api_key_hash) has every scope because api_key_scopes is empty; list the "
                'scopes it needs, e.g. api_key_scopes = ["town.read"] (["admin"] to keep every scope)',
                DEFAULT_KEY_ID,
            )
        entries.append((DEFAULT_KEY_ID, auth.api_key_hash, auth.api_key_scopes))
    for entry in auth.api_keys:
        if not entry.scopes:
            # Fail closed: a forgotten list must not mean "everything".
            raise ConfigError(
                f"townhall: [townhall.auth] API key '{entry.id}' lists no scopes: set scopes = [...] "
                '(e.g. ["town.read"]; ["admin"] grants every scope)'
            )
        entries.append((entry.id, entry.hash, entry.scopes))
    if not entries:
        raise ConfigError(
            "townhall: auth mode 'api_key' needs a key: set [townhall.auth] api_key_hash or add "
            "[[townhall.auth.api_keys]] entries (generate one with `tt auth gen-key`)"
        )
    keys: list[ConfiguredKey] = []
    seen: set[str] = set()
    for key_id, phc, scopes in entries:
        if key_id in seen:
            raise ConfigError(f"townhall: [townhall.auth] API key id '{key_id}' is used twice")
        seen.add(key_id)
        keys.append(ConfiguredKey(id=key_id, hash=_checked_hash(key_id, phc.strip()),
                                  scopes=_checked_scopes(key_id, scopes)))
    return keys


def _checked_hash(key_id: str, phc: str) -> str:
    # The hash itself is not echoed: it is not the key, but it is offline-attackable material.
    problem = (f"townhall: [townhall.auth] API key '{key_id}': hash is not an Argon2 PHC string "
               "(expected $argon2id$v=19$m=...,t=...,p=...$<salt>$<hash>, see `tt auth gen-key`)")
    if not _PHC.match(phc):
        raise ConfigError(problem)
    try:
        params = extract_parameters(phc)
    except (InvalidHashError, ValueError):
        raise ConfigError(problem) from None
    weak = (
        params.type is not Type.ID
        or params.memory_cost < MIN_MEMORY_KIB
        or params.memory_cost * params.time_cost < MIN_WORK
    )
    if weak:
        log.warning(
            "API key '%s' is hashed with weak Argon2 parameters (%s m=%d t=%d p=%d); "
            "regenerate it with `tt auth gen-key` (argon2id m=19456 t=2 p=1)",
            key_id, params.type.name.lower(), params.memory_cost, params.time_cost, params.parallelism,
        )
    return phc


def _checked_scopes(key_id: str, scopes: list[str]) -> frozenset[Scope]:
    allowed = {scope.value for scope in Scope}
    for value in scopes:
        if value not in allowed:
            listing = ", ".join(scope.value for scope in Scope)
            raise ConfigError(
                f"townhall: [townhall.auth] API key '{key_id}': unknown scope '{value}' (allowed: {listing})"
            )
    return parse_scopes(scopes)
