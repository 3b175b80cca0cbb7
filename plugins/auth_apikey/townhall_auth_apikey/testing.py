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
    generated = generate_api_key(parameters, key_id)
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


@dataclass
class FloodResult:
    """What a wrong-key flood and the valid requests sent meanwhile got back."""

    flood_statuses: dict[int, int]
    valid: list[tuple[int, float]]  #: (status, seconds) per valid request, in order


def sender_address(n: int) -> str:
    """A distinct loopback source address (Linux routes all of 127.0.0.0/8 to lo): a real other peer."""
    return f"127.0.{n // 250}.{n % 250 + 2}"


async def flood_while_presenting(url: str, flood_ids: list[str], valid_keys: list[str], *, senders: int = 60,
                                 per_second: float = 3.0, warmup: float = 1.0, spacing: float = 0.3,
                                 path: str = "/v1/status") -> FloodResult:
    """``senders`` addresses each present a new wrong key ``per_second`` times (half without an id, half
    ``<configured id>.<random>``) while one clean address presents each of ``valid_keys`` once.

    The valid keys are sent once every flooding address has had an answer (and ``warmup`` seconds have
    passed): from then on each flooder is a sender with a record, which is what the server can tell."""
    import asyncio
    import random
    import time

    import httpx

    stop, all_answered = asyncio.Event(), asyncio.Event()
    statuses: dict[int, int] = {}
    answered: set[int] = set()

    async def flooder(n: int) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=sender_address(n))
        async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as client:
            while not stop.is_set():
                secret = random.randbytes(32).hex()
                key = secret if n % 2 else f"{random.choice(flood_ids)}.{secret}"
                try:
                    status = (await client.get(path, headers={"X-API-Key": key})).status_code
                except httpx.HTTPError:
                    status = 0
                statuses[status] = statuses.get(status, 0) + 1
                answered.add(n)
                if len(answered) == senders:
                    all_answered.set()
                try:
                    await asyncio.wait_for(stop.wait(), 1 / per_second)
                except TimeoutError:
                    pass

    tasks = [asyncio.ensure_future(flooder(n)) for n in range(senders)]
    valid: list[tuple[int, float]] = []
    try:
        await asyncio.gather(asyncio.sleep(warmup), asyncio.wait_for(all_answered.wait(), 120))
        transport = httpx.AsyncHTTPTransport(local_address=sender_address(senders + 1))
        async with httpx.AsyncClient(base_url=url, transport=transport, timeout=30) as client:
            for key in valid_keys:
                started = time.perf_counter()
                response = await client.get(path, headers={"X-API-Key": key})
                valid.append((response.status_code, time.perf_counter() - started))
                await asyncio.sleep(spacing)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return FloodResult(flood_statuses=statuses, valid=valid)
