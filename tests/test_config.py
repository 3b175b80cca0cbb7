from pathlib import Path

import pytest

from tests.support.process import run_cli
from townhall.config import ConfigError, load_town, parse_config, starter_config


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
    assert config.townhall.auth.clock_skew_seconds == 60


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('name = "x"\n[townhall]\nrest_port = "x"\n',
         'townhall: tinytown.toml: townhall.rest_port: expected int, got "x"'),
        ('name = "x"\n[townhall]\nrest_port = 70000\n',
         "townhall: tinytown.toml: townhall.rest_port: expected int <= 65535"),
        ("max_agents = 3\n", "townhall: tinytown.toml: name: required key is missing"),
        ('name = "x"\nuse_streams = "yes"\n', 'townhall: tinytown.toml: use_streams: expected bool, got "yes"'),
        ('name = "x"\n[townhall.auth]\napi_keys = [{id = "a"}]\n',
         "townhall: tinytown.toml: townhall.auth.api_keys[0].hash: required key is missing"),
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
        "townhall: tinytown.toml: unknown key 'max_agnets' (ignored)",
        "townhall: tinytown.toml: unknown key 'townhall.rest_prot' (ignored)",
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
