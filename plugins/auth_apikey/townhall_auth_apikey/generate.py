"""New API keys and their hashes, in the exact form the original ``tt auth gen-key`` produces."""

from __future__ import annotations

import json
import uuid

import msgspec
from argon2 import Parameters, PasswordHasher, Type

#: The original's hashing parameters (reference §7.4); its townhall verifies what we produce and back.
REFERENCE_PARAMETERS = Parameters(
    type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=2, memory_cost=19456, parallelism=1
)


class GeneratedKey(msgspec.Struct, frozen=True):
    key: str
    hash: str


def generate_api_key(parameters: Parameters = REFERENCE_PARAMETERS, key_id: str | None = None) -> GeneratedKey:
    """A fresh raw key and its Argon2 PHC hash. Only tests pass cheaper ``parameters``.

    With ``key_id`` the key is ``<key id>.<secret>``: the id tells townhall the one hash to check, so
    a presented key costs at most one Argon2 verification. Without it the key is the original's form.
    """
    # Two UUID4s in simple form, like the original: 64 lowercase hex characters, about 244 random bits.
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    key = secret if key_id is None else f"{key_id}.{secret}"
    return GeneratedKey(key=key, hash=PasswordHasher.from_parameters(parameters).hash(key))


def config_snippet(phc: str, key_id: str | None = None, scopes: list[str] | None = None) -> str:
    """The ``tinytown.toml`` lines that enable this key (single-key layout unless ``key_id`` is given)."""
    # No scopes asked for: every scope, written out (an empty list is refused for a key entry).
    scope_list = "[" + ", ".join(json.dumps(s) for s in scopes or ["admin"]) + "]"
    if key_id is None:
        lines = ["[townhall.auth]", 'mode = "api_key"', f"api_key_hash = {json.dumps(phc)}",
                 f"api_key_scopes = {scope_list}"]
        return "\n".join(lines) + "\n"
    # Only the entry: a file that already has [townhall.auth] must not get that table a second time.
    lines = [
        '# needs mode = "api_key" in [townhall.auth]',
        "[[townhall.auth.api_keys]]",
        f"id = {json.dumps(key_id)}",
        f"hash = {json.dumps(phc)}",
        f"scopes = {scope_list}",
    ]
    return "\n".join(lines) + "\n"
