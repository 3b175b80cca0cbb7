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


def test_unknown_keys_are_warnings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert settings_of(tmp_path, "[townhall.mcp]\nport = 1\n") == McpSettings()
    assert "townhall: tinytown.toml: unknown key 'townhall.mcp.port' (ignored)" in caplog.text


def test_townhall_refuses_to_start_and_lists_the_plugin(tmp_path: Path, redis_url: str) -> None:
    write_town(tmp_path, "cfg", redis_url=redis_url, extra='[townhall.mcp]\nenabled = 1\n')
    result = run_cli("--town", str(tmp_path), "rest", "--port", "0")
    assert result.returncode == 1 and "townhall.mcp.enabled" in result.stderr
    listed = run_cli("plugins")
    assert any(line.split()[:2] == ["mcp", "townhall-mcp"] for line in listed.stdout.splitlines())
