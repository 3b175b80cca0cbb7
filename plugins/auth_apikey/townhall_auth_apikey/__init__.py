"""Townhall plugin ``auth_apikey``: auth mode ``api_key`` (Argon2id-hashed keys) and ``tt auth gen-key``.

Configuration (``tinytown.toml``)::

    [townhall.auth]
    mode = "api_key"
    api_key_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."   # key id "default"
    api_key_scopes = []                                   # empty = every scope

    [[townhall.auth.api_keys]]                            # any number of further keys
    id = "ci"
    hash = "$argon2id$..."
    scopes = ["town.read"]
"""

from __future__ import annotations

from typing import Callable

import click

from townhall import hookimpl
from townhall.registry import AuthModeSpec

from townhall_auth_apikey.cli import add_auth_commands, gen_key
from townhall_auth_apikey.generate import REFERENCE_PARAMETERS, GeneratedKey, config_snippet, generate_api_key
from townhall_auth_apikey.keyset import DEFAULT_KEY_ID, ApiKeyConfig, ApiKeyEntry, ConfiguredKey, load_keys
from townhall_auth_apikey.mode import ApiKeyAuth, presented_key
from townhall_auth_apikey.verifier import KeyVerifier, TooManyVerifications

__all__ = [
    "DEFAULT_KEY_ID",
    "REFERENCE_PARAMETERS",
    "ApiKeyAuth",
    "ApiKeyConfig",
    "ApiKeyEntry",
    "ConfiguredKey",
    "GeneratedKey",
    "KeyVerifier",
    "TooManyVerifications",
    "config_snippet",
    "gen_key",
    "generate_api_key",
    "load_keys",
    "presented_key",
]


@hookimpl
def townhall_register_auth_modes(register: Callable[[AuthModeSpec], None]) -> None:
    register(AuthModeSpec(name="api_key", factory=ApiKeyAuth.from_config, config_type=ApiKeyConfig,
                          summary="Argon2id-hashed API keys (Bearer or X-API-Key)"))


@hookimpl
def townhall_register_commands(tt: click.Group, townhall: click.Group) -> None:
    add_auth_commands(tt)
