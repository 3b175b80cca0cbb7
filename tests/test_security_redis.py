"""Issue 14 items 1 and 13: the Redis password never shows; the private server's files are private."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from townhall.testing.process import TownhallProcess, run_cli
from townhall.testing.towns import write_town
from townhall.redis_endpoint import EmbeddedRedis, ping, redact_url, server_binary

PASSWORD = "s3cret-Pa55"


@pytest.fixture
def guarded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real server that needs ``PASSWORD``; yields its socket path."""
    directory = tmp_path_factory.mktemp("redis-auth")
    sock = directory / "redis.sock"
    proc = subprocess.Popen(
        [server_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--dir", str(directory), "--save", "", "--appendonly", "no", "--requirepass", PASSWORD],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not (sock.exists() and ping(f"unix://{sock}?password={PASSWORD}", timeout=0.5)):
            assert time.monotonic() < deadline, "password-protected Redis did not start"
            time.sleep(0.02)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    "form",
    ["unix://{sock}?password={pw}", "unix://{sock}?db=0&username=default&password={pw}", "unix://default:{pw}@{sock}"],
)
def test_the_redis_password_is_shown_nowhere(tmp_path: Path, town_name: str, guarded_redis: Path, form: str) -> None:
    url = form.format(sock=guarded_redis, pw=PASSWORD)
    write_town(tmp_path, town_name, redis_url=url)
    proc = TownhallProcess(tmp_path).start()
    try:
        town = httpx.get(f"{proc.url}/v1/town", timeout=10)
        status = httpx.get(f"{proc.url}/v1/status", timeout=10)
        assert town.status_code == 200 and status.status_code == 200  # the password did get through
        cli = run_cli("--town", str(tmp_path), "status", "--json", program="tt")
        assert cli.returncode == 0, cli.stderr
        shown = {
            "/v1/town": town.json()["redis_url"],
            "/v1/status": status.json()["redis_url"],
            "tt status": json.loads(cli.stdout)["redis_url"],
        }
        for where, value in shown.items():
            assert PASSWORD not in value and "****" in value, (where, value)
            assert str(guarded_redis) in value, (where, value)
        assert "****" in proc.output()
    finally:
        proc.stop()
    assert PASSWORD not in proc.output()
    assert PASSWORD not in cli.stdout + cli.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("unix:///r.sock?password=pw", "unix:///r.sock?password=****"),
        ("unix:///r.sock?db=1&username=bob&password=pw", "unix:///r.sock?db=1&username=****&password=****"),
        ("redis://h/0?ssl_password=pw&socket_timeout=3", "redis://h/0?ssl_password=****&socket_timeout=3"),
        ("redis://h/0?PASSWORD=pw", "redis://h/0?PASSWORD=****"),
        ("redis://pw@host:6379", "redis://****@host:6379"),
        ("redis://:pa#ss@host", "redis://:****@host"),
        ("redis://:pa?ss@host", "redis://:****@host"),
        ("redis://host/0#pw", "redis://host/0#****"),
        ("redis://[::1:6379?password=pw", "redis://[::1:6379?password=****"),
    ],
)
def test_every_credential_part_is_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_private_server_keeps_its_directory_and_files_private(tmp_path: Path) -> None:
    (tmp_path / "tinytown.toml").write_text('name = "private"\n')
    from townhall.config import load_town

    old_umask = os.umask(0o022)  # the usual default: files 0644, directories 0755
    try:
        server = EmbeddedRedis(load_town(tmp_path, environ={}))
        server.start()
    finally:
        os.umask(old_umask)
    try:
        import redis

        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        time.sleep(1.5)  # appendfsync everysec
        state = tmp_path / ".tt"
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        files = [p for p in state.rglob("*") if p.is_file() or p.is_dir()]
        assert any("appendonly" in p.name or p.suffix == ".aof" for p in files), files
        for path in files:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    finally:
        server.stop()
