"""`tt auth gen-key` (reference §7.4, scenario 13) and the plugin's registration through entry points."""

from __future__ import annotations

import json
import re
import tomllib

import click
import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError
from click.testing import CliRunner

from townhall.auth import ALL_SCOPES, AuthRequest, Scope
from townhall.plugins import collect_registry, make_plugin_manager
import townhall_auth_apikey as plugin
from townhall_auth_apikey import ApiKeyAuth, ApiKeyConfig
from townhall_auth_apikey.testing import api_key_settings

# What the original uses to hash and verify; it must accept what we print (compatibility hint, §7.4).
REFERENCE_HASHER = PasswordHasher(
    time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
PHC = re.compile(r"^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$")


def tt_group() -> click.Group:
    tt = click.Group("tt")
    plugin.townhall_register_commands(tt=tt, townhall=click.Group("townhall"))
    return tt


def gen_key(*args: str) -> str:
    result = CliRunner().invoke(tt_group(), ["auth", "gen-key", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_gen_key_output_layout_matches_the_reference() -> None:
    lines = gen_key("--legacy").splitlines()
    key, phc = lines[3], lines[6]
    assert lines == [
        "🔐 Generated new API key",
        "",
        "API Key (store securely, shown only once):",
        key,
        "",
        "API Key Hash (add to tinytown.toml):",
        phc,
        "",
        "Add to your tinytown.toml:",
        "",
        "  [townhall.auth]",
        '  mode = "api_key"',
        f'  api_key_hash = "{phc}"',
        '  api_key_scopes = ["admin"]',
        "",
        "Then use the API key with townhall:",
        f"  export TOWNHALL_KEY='{key}'",
        '  curl -H "Authorization: Bearer $TOWNHALL_KEY" http://127.0.0.1:8080/v1/status',
    ]
    # Two UUID4s in simple form: the version and variant nibbles sit at fixed places.
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert key[12] == key[44] == "4"
    assert key[16] in "89ab" and key[48] in "89ab"
    assert PHC.match(phc)


def test_gen_key_issues_keys_that_name_their_id() -> None:
    # Issue 14 item 3: the id selects the one hash to check.
    single = json.loads(gen_key("--json"))["key"]
    entry = json.loads(gen_key("--json", "--id", "ci.nightly"))["key"]
    assert re.fullmatch(r"default\.[0-9a-f]{64}", single)
    assert re.fullmatch(r"ci\.nightly\.[0-9a-f]{64}", entry)
    lines = gen_key().splitlines()
    assert lines[-2] == f"  export TOWNHALL_KEY='{lines[3]}'"  # the whole key: the hint works when pasted


def test_scenario_13_key_verifies_with_the_reference_parameters() -> None:
    lines = gen_key().splitlines()
    key = lines[lines.index("API Key (store securely, shown only once):") + 1]
    phc = lines[lines.index("API Key Hash (add to tinytown.toml):") + 1]
    assert len(key) >= 32
    assert phc.startswith("$argon2")
    assert REFERENCE_HASHER.verify(phc, key)
    with pytest.raises(VerifyMismatchError):
        REFERENCE_HASHER.verify(phc, "wrong-key")


def test_each_run_gives_a_new_key_and_salt() -> None:
    first, second = gen_key().splitlines(), gen_key().splitlines()
    assert first[3] != second[3]
    assert first[6] != second[6]


def test_json_output_toml_is_a_working_config() -> None:
    out = json.loads(gen_key("--json"))
    assert set(out) == {"key", "hash", "toml"}
    assert PHC.match(out["hash"])
    assert tomllib.loads(out["toml"]) == {
        "townhall": {"auth": {"mode": "api_key", "api_key_hash": out["hash"], "api_key_scopes": ["admin"]}}}


async def test_generated_key_authenticates_through_the_printed_config() -> None:
    out = json.loads(gen_key("--json"))
    mode = ApiKeyAuth.from_config(api_key_settings('name = "t"\n' + out["toml"]))
    principal = await mode.authenticate(
        AuthRequest(headers={"authorization": f"Bearer {out['key']}"}, client=None, path="/v1/status")
    )
    assert principal is not None
    assert (principal.id, principal.mode) == ("default", "api_key")
    assert principal.scopes == frozenset({Scope.ADMIN}) and all(principal.has(scope) for scope in ALL_SCOPES)


async def test_id_option_prints_a_key_entry_with_scopes() -> None:
    out = json.loads(gen_key("--json", "--id", "ci", "--scope", "town.read"))
    assert tomllib.loads(out["toml"]) == {
        "townhall": {"auth": {"api_keys": [{"id": "ci", "hash": out["hash"], "scopes": ["town.read"]}]}}
    }
    settings = api_key_settings('name = "t"\n[townhall.auth]\nmode = "api_key"\n' + out["toml"])
    principal = await ApiKeyAuth.from_config(settings).authenticate(
        AuthRequest(headers={"x-api-key": out["key"]}, client=None, path="/v1/status")
    )
    assert principal is not None
    assert (principal.id, principal.scopes) == ("ci", frozenset({Scope.TOWN_READ}))


def test_id_option_in_human_output() -> None:
    lines = gen_key("--id", "ops").splitlines()
    assert lines[2] == "API Key (store securely, shown only once):"
    assert lines[5] == "API Key Hash (add to tinytown.toml):"
    assert "  [[townhall.auth.api_keys]]" in lines
    assert '  id = "ops"' in lines
    assert f'  hash = "{lines[6]}"' in lines


def test_unknown_scope_is_refused() -> None:
    result = CliRunner().invoke(tt_group(), ["auth", "gen-key", "--scope", "root"])
    assert result.exit_code == 2
    assert "root" in result.output


def test_an_existing_auth_group_is_reused() -> None:
    tt = click.Group("tt")
    auth = click.Group("auth")
    auth.add_command(click.Command("whoami", callback=lambda: None))
    tt.add_command(auth)
    plugin.townhall_register_commands(tt=tt, townhall=click.Group("townhall"))
    assert tt.commands["auth"] is auth
    assert set(auth.commands) == {"whoami", "gen-key"}


def test_entry_point_registers_the_mode_and_the_command() -> None:
    pm = make_plugin_manager(only=["auth_apikey"])
    registry = collect_registry(pm)
    assert registry.auth_modes.names() == ["api_key"]
    assert registry.auth_modes.get("api_key").factory == ApiKeyAuth.from_config
    assert registry.auth_modes.get("api_key").config_type is ApiKeyConfig
    tt = click.Group("tt")
    pm.hook.townhall_register_commands(tt=tt, townhall=click.Group("townhall"))
    result = CliRunner().invoke(tt, ["auth", "gen-key", "--json"])
    assert result.exit_code == 0
    assert PHC.match(json.loads(result.output)["hash"])



def test_the_hint_uses_the_towns_address(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tinytown.toml").write_text('name = "t"\n[townhall]\nbind = "0.0.0.0"\nrest_port = 9191\n')
    result = CliRunner().invoke(tt_group(), ["auth", "gen-key"], obj={"town_dir": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].endswith(" http://127.0.0.1:9191/v1/status")


def test_the_hint_works_when_pasted(tmp_path, town_name: str, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    # Issue 17 item 7: the printed lines, run by a shell, reach this town's townhall with the new key.
    import subprocess

    from townhall.testing.process import TownhallProcess, free_port
    from townhall.testing.towns import write_town

    port = free_port()
    write_town(tmp_path, town_name, redis_url=redis_url, extra=f"[townhall]\nrest_port = {port}\n")
    generated = CliRunner().invoke(tt_group(), ["auth", "gen-key", "--json"], obj={"town_dir": str(tmp_path)})
    with (tmp_path / "tinytown.toml").open("a") as f:
        f.write(json.loads(generated.output)["toml"])
    human = CliRunner().invoke(tt_group(), ["auth", "gen-key"], obj={"town_dir": str(tmp_path)}).output
    assert f"http://127.0.0.1:{port}/v1/status" in human
    proc = TownhallProcess(tmp_path, port=port).start()
    try:
        hint = json.loads(generated.output)["key"]
        pasted = f"export TOWNHALL_KEY='{hint}'\n" + human.splitlines()[-1].strip()
        ok = subprocess.run(["bash", "-c", pasted + " -s -o /dev/null -w '%{http_code}'"], capture_output=True,
                            text=True, timeout=30)
        assert ok.stdout == "200", (ok.stdout, ok.stderr)
        wrong = subprocess.run(["bash", "-c", "export TOWNHALL_KEY=wrong\n" + human.splitlines()[-1].strip()
                                + " -s -o /dev/null -w '%{http_code}'"], capture_output=True, text=True, timeout=30)
        assert wrong.stdout == "401"
    finally:
        proc.stop()
