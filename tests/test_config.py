from pathlib import Path
from typing import Callable

import msgspec
import pytest

from townhall import hookimpl
from townhall.config import ConfigError, load_town, parse_config
from townhall.starter_config import starter_config
from townhall.plugins import collect_registry, load_plugins, make_plugin_manager
from townhall.registry import LauncherSpec
from townhall.testing.process import run_cli


def test_starter_config_has_every_default() -> None:
    config, warnings = parse_config(starter_config("demo"))
    assert warnings == []
    assert config.name == "demo"
    assert config.townhall.rest_port == 8080
    assert config.townhall.request_timeout_ms == 30000
    assert config.townhall.max_body_bytes == 1024 * 1024
    assert config.agent.idle_timeout_secs == 300
    assert config.max_agents == 10
    assert config.redis.socket_path == ".tt/redis.sock"
    assert config.agent_clis["claude"].command == "claude --print --dangerously-skip-permissions"
    assert config.townhall.rate_limit.requests_per_minute == 120
    assert config.townhall.rate_limit.burst_size == 20
    assert config.townhall.auth.mode == "none"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('name = "x"\n[townhall]\nrest_port = "x"\n',
         'townhall: tinytown.toml: townhall.rest_port: expected int, got "x"'),
        ('name = "x"\n[townhall]\nrest_port = 70000\n',
         "townhall: tinytown.toml: townhall.rest_port: expected int <= 65535"),
        ("max_agents = 3\n", "townhall: tinytown.toml: name: required key is missing"),
        ('name = "x"\nuse_streams = "yes"\n', 'townhall: tinytown.toml: use_streams: expected bool, got "yes"'),
        ('name = [\n', "townhall: tinytown.toml: invalid TOML:"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(toml)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_unknown_keys_warn_but_load() -> None:
    config, warnings = parse_config('name = "x"\nmax_agnets = 3\n[townhall]\nrest_prot = 1\n'
                                    '[plugins.custom]\nanything = 1\n')
    assert config.max_agents == 10
    assert warnings == [
        "townhall: tinytown.toml: unknown key 'max_agnets' (ignored); did you mean 'max_agents'?",
        "townhall: tinytown.toml: unknown key 'townhall.rest_prot' (ignored); did you mean 'townhall.rest_port'?",
    ]


def test_env_overrides(tmp_path: Path) -> None:
    (tmp_path / "tinytown.toml").write_text('name = "x"\n[redis]\nurl = "redis://a:1"\npassword = "p"\n')
    town = load_town(tmp_path, environ={"REDIS_URL": "redis://b:2", "TINYTOWN_REDIS_PASSWORD": "q"})
    assert town.config.redis.url == "redis://b:2"
    assert town.config.redis.password == "q"
    assert load_town(tmp_path, environ={"REDIS_URL": "  "}).config.redis.url == "redis://a:1"


def test_malformed_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "tinytown.toml").write_text('name = "x"\n[townhall]\nrest_port = "x"\n')
    result = run_cli("--town", str(tmp_path), "rest")
    assert result.returncode == 2
    assert result.stderr.strip().endswith('townhall: tinytown.toml: townhall.rest_port: expected int, got "x"')


def test_missing_town_exits_2(tmp_path: Path) -> None:
    result = run_cli("--town", str(tmp_path))
    assert result.returncode == 2
    assert "Run 'tt init' first" in result.stderr


def test_tt_init_writes_a_loadable_town(tmp_path: Path) -> None:
    result = run_cli("init", "--name", "demo", cwd=tmp_path, program="tt")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".tt" / "logs").is_dir()
    town = load_town(tmp_path)
    assert town.name == "demo" and town.warnings == []
    again = run_cli("init", cwd=tmp_path, program="tt")
    assert again.returncode != 0 and "already exists" in again.stderr


def test_plugin_keys_of_a_shared_table_are_left_to_the_plugins() -> None:
    config, warnings = parse_config('name = "x"\n[townhall.auth]\nmode = "oidc"\nissuer = 1\nisuer = "y"\n')
    assert config.townhall.auth.mode == "oidc" and warnings == []


def test_the_modes_config_type_checks_its_table_naming_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "tinytown.toml").write_text('name = "x"\n[townhall.auth]\nmode = "oidc"\nissuer = 1\n')
    modes = load_plugins().registry.auth_modes
    with pytest.raises(ConfigError) as info:
        modes.settings(modes.get("oidc"), load_town(tmp_path))
    assert str(info.value) == "townhall: tinytown.toml: townhall.auth.issuer: expected str | null, got 1"


def test_auth_keys_no_installed_mode_knows_are_warned_about(tmp_path: Path) -> None:
    (tmp_path / "tinytown.toml").write_text(
        'name = "x"\n[townhall.auth]\nmode = "none"\napi_key_hash = "h"\nissuer = "https://idp.test"\n'
        'isuer = "y"\n[[townhall.auth.api_keys]]\nid = "a"\nhash = "h"\nscope = []\n'
    )
    registry = load_plugins().registry
    assert registry.auth_modes.settings(registry.auth_modes.get("none"), load_town(tmp_path)) is None
    assert registry.check_config(load_town(tmp_path)) == [
        "townhall: tinytown.toml: unknown key 'townhall.auth.isuer' (ignored); did you mean 'townhall.auth.issuer'?",
        "townhall: tinytown.toml: unknown key 'townhall.auth.api_keys[0].scope' (ignored)",
    ]


def test_a_bad_auth_value_stops_townhall_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "tinytown.toml").write_text('name = "x"\n[townhall.auth]\nmode = "api_key"\napi_key_hash = 5\n')
    result = run_cli("--town", str(tmp_path), "rest")
    assert result.returncode == 2  # a config error, like one in the core's own keys
    assert result.stderr.strip().endswith("townhall: tinytown.toml: townhall.auth.api_key_hash: expected str | null, got 5")


def test_tt_checks_the_plugin_sections_too(town_dir: Path) -> None:
    config = town_dir / "tinytown.toml"
    original = config.read_text()
    config.write_text(original + '[townhall.auth]\nmode = "api_key"\napi_key_hash = 5\n')
    refused = run_cli("--town", str(town_dir), "status", program="tt")
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("townhall.auth.api_key_hash: expected str | null, got 5")
    config.write_text(original + '[townhall.auth]\nmode = "none"\nisuer = "y"\n')
    warned = run_cli("--town", str(town_dir), "status", program="tt")
    assert warned.returncode == 0
    assert "unknown key 'townhall.auth.isuer' (ignored)" in warned.stderr


def test_a_config_type_needs_a_kind_with_a_config_table() -> None:
    class Settings(msgspec.Struct):
        depth: int = 1

    class Plugin:
        @hookimpl
        def townhall_register_launchers(self, register: Callable[[LauncherSpec], None]) -> None:
            register(LauncherSpec(name="deep", factory=lambda config: None, config_type=Settings))

    with pytest.raises(ValueError, match="launcher 'deep' .* declares a config_type"):
        collect_registry(make_plugin_manager(only=[], extra=[("deep", Plugin())]))
