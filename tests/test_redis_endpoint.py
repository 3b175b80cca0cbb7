"""Where Redis is and how its URL is shown (reference §1.3, §11.2 scenarios 14–15)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from townhall.config import load_town
from townhall.redis_endpoint import configured_endpoint, is_loopback_host, redact_url
from townhall.testing.process import TownhallProcess


def _town(tmp_path: Path, redis: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    (tmp_path / "tinytown.toml").write_text(f'name = "x"\n[redis]\n{redis}\n')
    return load_town(tmp_path, environ=environ or {})


def test_socket_mode_is_a_unix_url_under_the_town(tmp_path: Path) -> None:
    endpoint = configured_endpoint(_town(tmp_path, "use_socket = true"))
    assert endpoint.url == f"unix://{tmp_path}/.tt/redis.sock" and not endpoint.explicit


def test_tcp_urls_passwords_tls_and_overrides(tmp_path: Path) -> None:
    plain = configured_endpoint(_town(tmp_path, 'use_socket = false\nhost = "localhost"'))
    assert plain.url == "redis://localhost:6379" and not plain.explicit
    secret = configured_endpoint(_town(tmp_path, 'use_socket = false\nhost = "redis.example.com"\npassword = "s3cret"'))
    assert secret.url == "redis://:s3cret@redis.example.com:6379"
    assert secret.redacted == "redis://:****@redis.example.com:6379"
    assert secret.explicit  # a non-loopback host is somebody else's server
    tls = configured_endpoint(_town(tmp_path, 'use_socket = false\nhost = "127.0.0.1"\ntls_enabled = true'))
    assert tls.url.startswith("rediss://127.0.0.1:6379")
    env_pw = configured_endpoint(_town(tmp_path, 'use_socket = false\npassword = "a"',
                                       {"TINYTOWN_REDIS_PASSWORD": "b"}))
    assert env_pw.url == "redis://:b@127.0.0.1:6379"
    explicit = configured_endpoint(_town(tmp_path, 'url = "redis://config:1"', {"REDIS_URL": "redis://env:2"}))
    assert explicit.url == "redis://env:2" and explicit.explicit
    assert configured_endpoint(_town(tmp_path, 'url = "redis://config:1"')).url == "redis://config:1"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379", "redis://:****@host:6379"),
        ("rediss://default:pw@host:6380/0", "rediss://default:****@host:6380/0"),
        ("redis://user%40name:pw@host:1", "redis://user%40name:****@host:1"),
        ("redis://host:6379", "redis://host:6379"),
        ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
        ("redis://default:p@ss@", "redis://default:****@"),
    ],
)
def test_redaction(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(("host", "loopback"), [("localhost", True), ("127.0.0.1", True), ("127.1.2.3", True),
                                                ("::1", True), ("10.0.0.1", False), ("redis.example", False)])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_unreachable_explicit_url_never_starts_a_server_and_answers_503(tmp_path: Path) -> None:
    """An explicit URL is never replaced by a private server; while it is down townhall serves 503s."""
    dead = tmp_path / "nothing-here.sock"
    (tmp_path / ".tt").mkdir()
    (tmp_path / "tinytown.toml").write_text(f'name = "x"\n[redis]\nurl = "unix://{dead}"\n[agent]\nlauncher = "none"\n')
    proc = TownhallProcess(tmp_path).start()
    try:
        ready = httpx.get(f"{proc.url}/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["redis"] == "disconnected"
        status = httpx.get(f"{proc.url}/v1/status", timeout=10)
        assert status.status_code == 503
        assert status.headers["content-type"].startswith("application/problem+json")
        assert not (tmp_path / ".tt" / "redis.pid").exists()
        assert "private Redis" not in proc.output()
    finally:
        assert proc.stop() == 0


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        ({"redis_version": "7.0.15"}, False),
        ({"redis_version": "6.2.0"}, False),
        ({"redis_version": "6.0.9"}, True),
        ({"redis_version": "5.0.7"}, True),
        ({"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "9.1.2"}, False),
    ],
)
def test_server_version_rule(info: dict[str, object], problem: bool) -> None:
    from townhall.redis_endpoint import version_problem

    assert (version_problem(info) is not None) is problem


def test_the_test_server_passes_the_version_check(redis_url: str) -> None:
    from townhall.redis_clients import check_server
    from townhall.redis_endpoint import RedisEndpoint

    check_server(RedisEndpoint(url=redis_url, explicit=True))  # raises if too old
