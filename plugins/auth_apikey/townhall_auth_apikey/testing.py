"""Test helpers for towns in auth mode ``api_key``: keys with cheap hashes and the config that accepts them.

For this plugin's tests, the core's and any other plugin's (``from townhall_auth_apikey.testing import
make_key, api_keys_toml``); they need nothing beyond the plugin's own dependencies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from argon2 import Parameters, Type

from townhall.auth import Scope
from townhall.config import read_toml, table_config

from townhall_auth_apikey.generate import generate_api_key
from townhall_auth_apikey.keyset import ApiKeyConfig

#: Argon2id with almost no work. The verifier honours the parameters inside each PHC string, so tests
#: that are not about Argon2's cost use this (townhall logs a "weak parameters" warning, nothing more).
CHEAP_ARGON2 = Parameters(
    type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=1, memory_cost=64, parallelism=1
)


@dataclass(frozen=True)
class IssuedKey:
    id: str
    key: str
    hash: str
    scopes: frozenset[Scope]

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def grants(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


def make_key(key_id: str, *scopes: Scope, parameters: Parameters = CHEAP_ARGON2) -> IssuedKey:
    generated = generate_api_key(parameters)
    return IssuedKey(id=key_id, key=generated.key, hash=generated.hash, scopes=frozenset(scopes))


def api_keys_toml(keys: list[IssuedKey]) -> str:
    """``[townhall.auth]`` in api_key mode with one ``[[townhall.auth.api_keys]]`` entry per key."""
    lines = ["[townhall.auth]", 'mode = "api_key"']
    for key in keys:
        scopes = ", ".join(json.dumps(s.value) for s in sorted(key.scopes, key=lambda s: s.value))
        lines += ["[[townhall.auth.api_keys]]", f"id = {json.dumps(key.id)}",
                  f"hash = {json.dumps(key.hash)}", f"scopes = [{scopes}]"]
    return "\n".join(lines) + "\n"


def scope_keys() -> dict[Scope, IssuedKey]:
    """One key per scope: each grants exactly that scope (the admin key grants all)."""
    return {scope: make_key(scope.value.replace(".", "-"), scope) for scope in Scope}


def api_key_settings(toml: str) -> ApiKeyConfig:
    """``[townhall.auth]`` of a ``tinytown.toml`` text as the mode's settings, converted as townhall does."""
    return table_config(read_toml(toml), "townhall.auth", ApiKeyConfig)
