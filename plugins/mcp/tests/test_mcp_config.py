"""``[townhall.mcp]``: defaults, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from townhall.testing.process import run_cli
from townhall.testing.towns import write_town
from townhall.config import ConfigError, load_town
from townhall_mcp import McpSettings, mcp_settings


def settings_of(tmp_path: Path, extra: str) -> McpSettings:
    write_town(tmp_path, "cfg", extra=extra)
    return mcp_settings(load_town(tmp_path))


def test_defaults_and_values(tmp_path: Path) -> None:
    assert settings_of(tmp_path, "") == McpSettings(enabled=True, path="/mcp")
    assert settings_of(tmp_path, '[townhall.mcp]\nenabled = false\npath = "/x/mcp"\n') == McpSettings(
        enabled=False, path="/x/mcp")


@pytest.mark.parametrize(("extra", "message"), [
    ('[townhall.mcp]\nenabled = "yes"\n', 'townhall: tinytown.toml: townhall.mcp.enabled: expected bool, got "yes"'),
    ('[townhall.mcp]\npath = "mcp"\n', "townhall: tinytown.toml: townhall.mcp.path: expected str matching"),
    ('[townhall.mcp]\npath = "/v1/mcp"\n', "townhall: tinytown.toml: townhall.mcp.path: '/v1/mcp' is taken"),
    ("[townhall]\nmcp = 3\n", "townhall: tinytown.toml: townhall.mcp: expected a table"),
])
def test_bad_values_name_file_and_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_of(tmp_path, extra)
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_core_knows_the_table_and_warns_about_unknown_keys_in_it(tmp_path: Path, redis_url: str) -> None:
    write_town(tmp_path, "cfg", redis_url=redis_url, extra="[townhall.mcp]\nport = 1\n")
    result = run_cli("--town", str(tmp_path), "status", program="tt")
    assert result.returncode == 0, result.stderr
    assert "unknown key 'townhall.mcp.port' (ignored)" in result.stderr
    assert "unknown key 'townhall.mcp' " not in result.stderr


def test_a_bad_value_stops_every_command_as_a_config_error(tmp_path: Path, redis_url: str) -> None:
    write_town(tmp_path, "cfg", redis_url=redis_url, extra='[townhall.mcp]\nenabled = 1\n')
    for args, program in ((("rest", "--port", "0"), "townhall"), (("status",), "tt")):
        result = run_cli("--town", str(tmp_path), *args, program=program)
        assert result.returncode == 2 and "townhall.mcp.enabled: expected bool, got 1" in result.stderr


def test_a_taken_path_stops_townhall(tmp_path: Path, redis_url: str) -> None:
    write_town(tmp_path, "cfg", redis_url=redis_url, extra='[townhall.mcp]\npath = "/v1/mcp"\n')
    result = run_cli("--town", str(tmp_path), "rest", "--port", "0")
    assert result.returncode == 1 and "townhall.mcp.path: '/v1/mcp' is taken" in result.stderr


def test_townhall_plugins_lists_the_plugin() -> None:
    listed = run_cli("plugins")
    assert any(line.split()[:2] == ["mcp", "townhall-mcp"] for line in listed.stdout.splitlines())
