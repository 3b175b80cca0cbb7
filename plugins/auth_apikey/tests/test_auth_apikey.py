"""Auth mode ``api_key``: key extraction (reference §7.2), per-key scopes, caches and config checks."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Callable

import pytest
from argon2 import PasswordHasher, profiles

from townhall.auth import ALL_SCOPES, AuthRequest, InvalidCredentials, Principal, Scope
from townhall.config import ConfigError
from townhall_auth_apikey import (
    ApiKeyAuth,
    ApiKeyConfig,
    ConfiguredKey,
    KeyVerifier,
    TooManyVerifications,
    generate_api_key,
    load_keys,
)
from townhall_auth_apikey.mode import presented_key
from townhall_auth_apikey.testing import api_key_settings

ADMIN_KEY = "a" * 64
READER_KEY = "b" * 64
WRITER_KEY = "c" * 64


def cheap_hash(key: str) -> str:
    # Tests only: the verifier honours the parameters inside the PHC string, so cheap hashes verify fast.
    return PasswordHasher.from_parameters(profiles.CHEAPEST).hash(key)


class CountingHasher:
    """A real PasswordHasher that counts verifications and may hold them until a gate opens."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.inner = PasswordHasher()
        self.calls = 0
        self.passwords: list[str] = []
        self.threads: set[int] = set()
        self.gate = gate
        self._lock = threading.Lock()

    def verify(self, hash: str, password: str) -> bool:
        with self._lock:
            self.calls += 1
            self.passwords.append(password)
            self.threads.add(threading.get_ident())
        if self.gate is not None:
            self.gate.wait(timeout=10)
        return self.inner.verify(hash, password)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(toml: str) -> ApiKeyConfig:
    return api_key_settings('name = "t"\n' + toml)


def keys_toml(default_hash: str, *entries: str) -> str:
    """``[townhall.auth]`` in mode ``api_key`` with the default key's hash and the given key entries."""
    return f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{default_hash}"\n' + "".join(entries)


def key_entry(key_id: str, phc: str, scopes: list[str] | None = None) -> str:
    """One ``[[townhall.auth.api_keys]]`` entry."""
    entry = f'\n[[townhall.auth.api_keys]]\nid = "{key_id}"\nhash = "{phc}"\n'
    return entry + (f"scopes = {json.dumps(scopes)}\n" if scopes is not None else "")


def three_keys() -> list[ConfiguredKey]:
    return load_keys(config(keys_toml(
        cheap_hash(ADMIN_KEY),
        key_entry("reader", cheap_hash(READER_KEY), ["town.read"]),
        key_entry("writer", cheap_hash(WRITER_KEY), ["town.read", "town.write"]),
    )))


def make_mode(**options: object) -> tuple[ApiKeyAuth, CountingHasher]:
    hasher = options.pop("hasher", None) or CountingHasher()
    return ApiKeyAuth(KeyVerifier(three_keys(), hasher=hasher, **options)), hasher  # type: ignore[arg-type]


def request(**headers: str) -> AuthRequest:
    return AuthRequest(headers={k.replace("_", "-"): v for k, v in headers.items()}, client="10.0.0.9",
                       path="/v1/status")


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


# --- extraction (reference §7.2) ---------------------------------------------------------------


async def test_no_credentials_gives_none() -> None:
    mode, hasher = make_mode()
    assert await mode.authenticate(request()) is None
    assert await mode.authenticate(request(accept="application/json")) is None
    assert hasher.calls == 0


async def test_bearer_and_x_api_key_are_both_accepted_and_trimmed() -> None:
    mode, _ = make_mode()
    by_bearer = await mode.authenticate(request(authorization=f"Bearer   {READER_KEY}  "))
    by_header = await mode.authenticate(request(x_api_key=f" {READER_KEY}\t"))
    assert by_bearer == by_header == Principal(id="reader", scopes=frozenset({Scope.TOWN_READ}), mode="api_key")


async def test_bearer_wins_over_x_api_key() -> None:
    mode, _ = make_mode()
    principal = await mode.authenticate(request(authorization=f"Bearer {WRITER_KEY}", x_api_key=READER_KEY))
    assert principal is not None and principal.id == "writer"
    with pytest.raises(InvalidCredentials):
        await mode.authenticate(request(authorization="Bearer wrong", x_api_key=READER_KEY))


@pytest.mark.parametrize("value", [f"Basic {READER_KEY}", f"bearer {READER_KEY}", f"Bearer\t{READER_KEY}",
                                   f"BEARER {READER_KEY}", f"Token {READER_KEY}"])
async def test_other_authorization_values_are_ignored(value: str) -> None:
    mode, hasher = make_mode()
    assert await mode.authenticate(request(authorization=value)) is None
    principal = await mode.authenticate(request(authorization=value, x_api_key=ADMIN_KEY))
    assert principal is not None and principal.id == "default"


async def test_empty_bearer_is_a_wrong_key_without_argon2() -> None:
    mode, hasher = make_mode()
    with pytest.raises(InvalidCredentials):
        await mode.authenticate(request(authorization="Bearer    ", x_api_key=ADMIN_KEY))
    assert hasher.calls == 0


async def test_wrong_key_is_invalid_credentials_and_never_echoed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    mode, _ = make_mode()
    wrong = "d" * 64
    with pytest.raises(InvalidCredentials) as info:
        await mode.authenticate(request(authorization=f"Bearer {wrong}"))
    assert info.value.description == "Invalid credentials"
    assert wrong not in str(info.value) and wrong not in repr(info.value.args)
    assert wrong not in caplog.text


# --- scopes per key ------------------------------------------------------------------------------


async def test_each_key_has_its_own_id_and_scopes() -> None:
    mode, _ = make_mode()
    admin = await mode.authenticate(request(x_api_key=ADMIN_KEY))
    reader = await mode.authenticate(request(x_api_key=READER_KEY))
    writer = await mode.authenticate(request(x_api_key=WRITER_KEY))
    assert admin == Principal(id="default", scopes=ALL_SCOPES, mode="api_key")
    assert reader is not None and reader.has(Scope.TOWN_READ) and not reader.has(Scope.TOWN_WRITE)
    assert writer is not None and writer.has(Scope.TOWN_WRITE) and not writer.has(Scope.AGENT_MANAGE)


async def test_single_key_with_explicit_scopes() -> None:
    mode = ApiKeyAuth.from_config(config(f"""
[townhall.auth]
mode = "api_key"
api_key_hash = "{cheap_hash(ADMIN_KEY)}"
api_key_scopes = ["town.read", "agent.manage"]
"""))
    principal = await mode.authenticate(request(x_api_key=ADMIN_KEY))
    assert principal == Principal(id="default", scopes=frozenset({Scope.TOWN_READ, Scope.AGENT_MANAGE}),
                                  mode="api_key")


# --- caches --------------------------------------------------------------------------------------


async def test_argon2_runs_in_a_worker_thread() -> None:
    mode, hasher = make_mode()
    await mode.authenticate(request(x_api_key=ADMIN_KEY))
    assert hasher.threads and threading.get_ident() not in hasher.threads


async def test_a_known_key_is_verified_once() -> None:
    mode, hasher = make_mode()
    first = await mode.authenticate(request(x_api_key=WRITER_KEY))
    tried = hasher.calls  # every configured key up to the matching one
    assert tried == 3
    for _ in range(50):
        assert await mode.authenticate(request(authorization=f"Bearer {WRITER_KEY}")) == first
    assert hasher.calls == tried


async def test_a_wrong_key_is_verified_once_while_remembered() -> None:
    clock = FakeClock()
    mode, hasher = make_mode(timer=clock, negative_ttl=60)
    for _ in range(20):
        with pytest.raises(InvalidCredentials):
            await mode.authenticate(request(x_api_key="wrong-key"))
    assert hasher.calls == 3  # one pass over the three configured keys
    clock.now += 61
    with pytest.raises(InvalidCredentials):
        await mode.authenticate(request(x_api_key="wrong-key"))
    assert hasher.calls == 6


async def test_a_known_key_in_use_is_not_forgotten_on_a_timer() -> None:
    # Issue 14 item 3: a key that keeps being used never costs a second verification.
    clock = FakeClock()
    mode, hasher = make_mode(timer=clock)
    for _ in range(5):
        await mode.authenticate(request(x_api_key=ADMIN_KEY))
        clock.now += 3600
    assert hasher.calls == 1


def id_keys(*key_ids: str) -> tuple[list[ConfiguredKey], dict[str, str]]:
    raw = {key_id: f"{key_id}.{'d' * 64}" for key_id in key_ids}
    toml = '[townhall.auth]\nmode = "api_key"\n' + "".join(
        f'[[townhall.auth.api_keys]]\nid = "{k}"\nhash = "{cheap_hash(v)}"\nscopes = ["admin"]\n'
        for k, v in raw.items()
    )
    return load_keys(config(toml)), raw


async def test_a_key_with_an_id_costs_at_most_one_verification() -> None:
    keys, raw = id_keys("k1", "k2", "ci.nightly", "k4")
    hasher = CountingHasher()
    mode = ApiKeyAuth(KeyVerifier(keys, hasher=hasher))
    principal = await mode.authenticate(request(x_api_key=raw["k4"]))
    assert principal is not None and principal.id == "k4" and hasher.calls == 1
    assert (await mode.authenticate(request(x_api_key=raw["ci.nightly"]))).id == "ci.nightly"  # type: ignore[union-attr]
    assert hasher.calls == 2
    with pytest.raises(InvalidCredentials):
        await mode.authenticate(request(x_api_key="k2." + "e" * 64))  # right id, wrong secret: one check
    assert hasher.calls == 3
    with pytest.raises(InvalidCredentials):
        await mode.authenticate(request(x_api_key="nobody." + "e" * 64))  # unknown id: no Argon2 at all
    assert hasher.calls == 3
    with pytest.raises(InvalidCredentials):
        await mode.authenticate(request(x_api_key="e" * 64))  # no id: the slower path, every hash
    assert hasher.calls == 7


async def test_a_clean_sender_is_verified_before_a_flooding_one() -> None:
    gate = threading.Event()
    keys, raw = id_keys("k1")
    hasher = CountingHasher(gate)
    verifier = KeyVerifier(keys, hasher=hasher, threads=1, max_pending=3)
    mode = ApiKeyAuth(verifier)

    def sent(key: str, client: str) -> asyncio.Future[Principal | None]:
        req = AuthRequest(headers={"x-api-key": key}, client=client, path="/v1/status")
        return asyncio.ensure_future(mode.authenticate(req))

    verifier._failures["10.6.6.6"] = 5  # the flooder has presented five wrong keys recently
    running = sent("k1." + "0" * 64, "10.6.6.6")
    await wait_until(lambda: hasher.calls == 1)
    flood = [sent(f"k1.{n:064d}", "10.6.6.6") for n in range(1, 3)]  # the queue is full now
    valid = sent(raw["k1"], "10.0.0.1")  # a clean sender: the worst waiting job makes room
    with pytest.raises(TooManyVerifications):
        await flood[1]
    gate.set()
    assert (await valid) is not None
    for task in (running, flood[0]):
        with pytest.raises(InvalidCredentials):
            await task
    assert hasher.passwords[1] == raw["k1"]  # served before the flooder's waiting key
    # Two wrong keys and one refusal more on the flooder's record; none on the clean sender's.
    assert verifier._failures["10.6.6.6"] == 8 and "10.0.0.1" not in verifier._failures


async def test_concurrent_requests_with_one_new_key_share_one_verification() -> None:
    gate = threading.Event()
    mode, hasher = make_mode(hasher=CountingHasher(gate))
    waiting = [asyncio.ensure_future(mode.authenticate(request(x_api_key=ADMIN_KEY))) for _ in range(25)]
    await wait_until(lambda: hasher.calls == 1)
    gate.set()
    principals = await asyncio.gather(*waiting)
    assert {p.id for p in principals if p} == {"default"} and len(principals) == 25
    assert hasher.calls == 1


async def test_a_cancelled_waiter_does_not_cancel_the_shared_verification() -> None:
    gate = threading.Event()
    mode, hasher = make_mode(hasher=CountingHasher(gate))
    first = asyncio.ensure_future(mode.authenticate(request(x_api_key=ADMIN_KEY)))
    second = asyncio.ensure_future(mode.authenticate(request(x_api_key=ADMIN_KEY)))
    await wait_until(lambda: hasher.calls == 1)
    first.cancel()
    gate.set()
    principal = await second
    assert principal is not None and principal.id == "default"
    assert first.cancelled()


async def test_too_many_pending_verifications_are_refused_at_once() -> None:
    gate = threading.Event()
    mode, hasher = make_mode(hasher=CountingHasher(gate), threads=1, max_pending=2)
    busy = [asyncio.ensure_future(mode.authenticate(request(x_api_key=key))) for key in ("x1", "x2")]
    await wait_until(lambda: hasher.calls == 1)  # one runs, one waits for the single thread
    with pytest.raises(TooManyVerifications) as info:
        await mode.authenticate(request(x_api_key="x3"))
    assert isinstance(info.value, InvalidCredentials) and info.value.retry_after >= 1
    joined = asyncio.ensure_future(mode.authenticate(request(x_api_key="x1")))  # same key: joins, no refusal
    gate.set()
    for task in [*busy, joined]:
        with pytest.raises(InvalidCredentials) as failure:
            await task
        assert not isinstance(failure.value, TooManyVerifications)
    assert hasher.calls == 6  # x1 and x2, each against three keys
    # The cached verdict is served even while the queue would be full.
    assert await mode.authenticate(request(x_api_key=ADMIN_KEY)) is not None


async def test_caches_stay_bounded_under_many_distinct_wrong_keys() -> None:
    verifier = KeyVerifier(three_keys(), negative_size=4096, positive_size=1024)
    mode = ApiKeyAuth(verifier)
    for n in range(10_000):
        with pytest.raises(InvalidCredentials):
            await mode.authenticate(request(x_api_key=f"wrong-{n}"))
    known, rejected = verifier.cache_sizes
    assert known == 0 and rejected == 4096
    assert await mode.authenticate(request(x_api_key=READER_KEY)) is not None
    assert verifier.cache_sizes == (1, 4096)


async def test_verification_honours_the_parameters_in_each_hash() -> None:
    # Keys hashed with the reference parameters and with a cheap profile both verify.
    generated = generate_api_key()
    keys = load_keys(config(keys_toml(generated.hash, key_entry("cheap", cheap_hash(READER_KEY), ["admin"]))))
    mode = ApiKeyAuth(KeyVerifier(keys))
    assert (await mode.authenticate(request(x_api_key=generated.key))).id == "default"  # type: ignore[union-attr]
    assert (await mode.authenticate(request(x_api_key=READER_KEY))).id == "cheap"  # type: ignore[union-attr]


# --- configuration -------------------------------------------------------------------------------


def config_error(toml: str) -> str:
    with pytest.raises(ConfigError) as info:
        ApiKeyAuth.from_config(config(toml))
    message = str(info.value)
    assert message.startswith("townhall: ") and "\n" not in message
    return message


def test_a_key_entry_without_a_hash_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        config('[townhall.auth]\napi_keys = [{id = "a"}]\n')
    assert str(info.value).startswith(
        "townhall: tinytown.toml: townhall.auth.api_keys[0].hash: required key is missing")
    assert "\n" not in str(info.value)


def test_api_key_mode_without_any_hash_is_a_config_error() -> None:
    message = config_error('[townhall.auth]\nmode = "api_key"\n')
    assert "api_key_hash" in message and "tt auth gen-key" in message


@pytest.mark.parametrize("bad", ["not-a-hash", "$argon2id$v=19$m=19456,t=2,p=1", "$argon2id$v=19$m=x,t=2,p=1$aa$bb",
                                 "$bcrypt$10$abc", "$argon2id$v=19$m=19456,t=2,p=1$@@@@$####"])
def test_a_hash_that_is_not_argon2_phc_names_the_key(bad: str) -> None:
    message = config_error(f'[townhall.auth]\nmode = "api_key"\n[[townhall.auth.api_keys]]\nid = "ci"\nhash = "{bad}"\n'
                           'scopes = ["admin"]\n')
    assert "'ci'" in message and "Argon2 PHC" in message
    assert bad not in message


def test_a_bad_single_hash_is_named_default() -> None:
    assert "'default'" in config_error('[townhall.auth]\nmode = "api_key"\napi_key_hash = "nope"\n')


def test_unknown_scope_is_a_config_error() -> None:
    message = config_error(f"""
[townhall.auth]
mode = "api_key"
[[townhall.auth.api_keys]]
id = "ci"
hash = "{cheap_hash(READER_KEY)}"
scopes = ["town:read"]
""")
    assert "'ci'" in message and "unknown scope 'town:read'" in message and "town.read" in message


def test_duplicate_key_ids_are_a_config_error() -> None:
    phc = cheap_hash(READER_KEY)
    entry = f'[[townhall.auth.api_keys]]\nid = "{{id}}"\nhash = "{phc}"\nscopes = ["admin"]\n'
    twice = config_error('[townhall.auth]\nmode = "api_key"\n' + entry.format(id="ci") + entry.format(id="ci"))
    assert "'ci'" in twice and "twice" in twice
    clash = config_error(f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{phc}"\n' + entry.format(id="default"))
    assert "'default'" in clash


def test_weak_parameters_are_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="townhall.auth")
    ApiKeyAuth.from_config(config(f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{cheap_hash("k")}"\n'
                                  'api_key_scopes = ["admin"]\n'))
    assert [r.name for r in caplog.records] == ["townhall.auth"]
    assert "'default'" in caplog.records[0].getMessage() and "weak" in caplog.records[0].getMessage()


def test_reference_parameters_are_not_weak(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="townhall.auth")
    phc = generate_api_key().hash
    ApiKeyAuth.from_config(config(f'[townhall.auth]\nmode = "api_key"\napi_key_hash = "{phc}"\n'
                                  'api_key_scopes = ["admin"]\n'))
    assert caplog.records == []


@pytest.mark.parametrize(("headers", "expected"), [
    ({"authorization": "Bearer abc.def"}, "abc.def"),
    ({"authorization": "Bearer  padded\t "}, "padded"),  # tab and space are visible ASCII here
    ({"authorization": "Bearer clé"}, None),  # not ASCII: ignored, not a wrong key
    ({"authorization": "Bearer a\x7fb", "x-api-key": "fallback"}, "fallback"),
    ({"authorization": "Basic dXNlcg==", "x-api-key": "k"}, "k"),
    ({"x-api-key": "line\nbreak"}, None),
    ({"x-api-key": ""}, ""),  # an empty value is still a (wrong) key
])
def test_which_header_value_is_the_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected
