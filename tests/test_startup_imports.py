"""What a process start imports: every `tt` command loads the plugins, and a townhall start builds the
app, so a heavy import there is paid by every command and every start (they were a second each)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def imported_after(code: str, cwd: Path | None = None) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {name.split(".")[0] for name in done.stdout.split()}


def test_tt_commands_do_not_import_the_web_stack() -> None:
    loaded = imported_after("from townhall.cli.groups import register_plugin_commands\nregister_plugin_commands()")
    assert "townhall_mcp" in loaded and "townhall_dashboard" in loaded  # the plugins did load
    assert not loaded & {"litestar", "mcp", "jinja2", "uvicorn", "starlette", "pydantic"}


def test_a_townhall_app_loads_the_mcp_sdk_only_when_mcp_is_used(tmp_path: Path) -> None:
    (tmp_path / "tinytown.toml").write_text('name = "startup"\n')
    loaded = imported_after(
        "from townhall.config import load_town\n"
        "from townhall.plugins import load_plugins\n"
        "from townhall.runtime import Role, build_runtime\n"
        "from townhall.app import create_app\n"
        "town = load_town('.')\n"
        "app = create_app(build_runtime(town, load_plugins(), role=Role.SERVER))\n"
        "assert any(route.path == '/mcp' for route in app.routes)\n", cwd=tmp_path)
    assert "litestar" in loaded and "mcp" not in loaded
