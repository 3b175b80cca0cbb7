"""Issue 15 item 5: TLS and ACL Redis. A real ``redis-server`` with a TLS port (certificates from
``trustme``) and an ACL user; townhall, ``tt`` and workers verify the server, present a client certificate
when asked, log in as the user (password in the URL or ``TINYTOWN_REDIS_PASSWORD``); refused credentials
or an untrusted certificate stop townhall with one line and exit 1, the password printed nowhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import redis
import trustme

from townhall.config import ConfigError, load_town
from townhall.testing.process import BIN, TownhallProcess, free_port, run_cli
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import write_town

USER, PASSWORD, ADMIN = "alice", "Al1ce-Pa55word", "adm1n-Pa55"


class TlsRedis:
    def __init__(self, directory: Path, ca: trustme.CA, *, client_certs: str) -> None:
        self.port = free_port()
        server = ca.issue_cert("127.0.0.1", "localhost")
        server.cert_chain_pems[0].write_to_path(directory / "server.crt")
        server.private_key_pem.write_to_path(directory / "server.key")
        self.server = RedisServer(directory, password=ADMIN, args=[
            "--tls-port", str(self.port), "--tls-cert-file", str(directory / "server.crt"),
            "--tls-key-file", str(directory / "server.key"), "--tls-ca-cert-file", str(directory.parent / "ca.pem"),
            "--tls-auth-clients", client_certs,
            "--user", USER, "on", f">{PASSWORD}", "~*", "&*", "+@all",
        ])

    def url(self, userinfo: str = f"{USER}:{PASSWORD}") -> str:
        return f"rediss://{userinfo}@127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, trustme.CA]:
    root = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(root / "ca.pem")
    client = ca.issue_cert("townhall-client@example.com")
    client.cert_chain_pems[0].write_to_path(root / "client.crt")
    client.private_key_pem.write_to_path(root / "client.key")
    return root, ca


def _tls_redis(pki: tuple[Path, trustme.CA], name: str, client_certs: str) -> Iterator[TlsRedis]:
    root, ca = pki
    (root / name).mkdir()
    server = TlsRedis(root / name, ca, client_certs=client_certs)
    server.server.start()
    yield server
    server.server.stop()


@pytest.fixture(scope="module")
def tls_redis(pki: tuple[Path, trustme.CA]) -> Iterator[TlsRedis]:
    """TLS only on TCP (client certificates optional), an ACL user; the socket is for the test's checks."""
    yield from _tls_redis(pki, "optional", "optional")


@pytest.fixture(scope="module")
def mtls_redis(pki: tuple[Path, trustme.CA]) -> Iterator[TlsRedis]:
    """As :func:`tls_redis`, but every client must present a certificate the CA signed."""
    yield from _tls_redis(pki, "required", "yes")


def _admin(server: TlsRedis) -> redis.Redis:
    return redis.Redis.from_url(server.server.admin_url, decode_responses=True)


def tls_table(pki_root: Path, *, client: bool = False) -> str:
    lines = ["[redis.tls]", f"ca_file = {json.dumps(str(pki_root / 'ca.pem'))}"]
    if client:
        lines += [f"cert_file = {json.dumps(str(pki_root / 'client.crt'))}",
                  f"key_file = {json.dumps(str(pki_root / 'client.key'))}"]
    return "\n".join(lines) + "\n"


def _town(tmp_path: Path, town_name: str, url: str, extra: str = "") -> Path:
    write_town(tmp_path, town_name, redis_url=url)
    with (tmp_path / "tinytown.toml").open("a", encoding="utf-8") as f:
        f.write(extra)
    return tmp_path


def test_townhall_and_tt_work_over_verified_tls_as_an_acl_user(
        tmp_path: Path, town_name: str, tls_redis: TlsRedis, pki: tuple[Path, trustme.CA]) -> None:
    town = _town(tmp_path, town_name, tls_redis.url(), tls_table(pki[0]))
    proc = TownhallProcess(town).start()
    try:
        created = httpx.post(f"{proc.url}/v1/backlog", json={"description": "over TLS"}, timeout=10)
        assert created.status_code == 201, created.text
        status = httpx.get(f"{proc.url}/v1/status", timeout=10).json()
        assert status["redis_url"] == f"rediss://{USER}:****@127.0.0.1:{tls_redis.port}"
        cli = run_cli("--town", str(town), "backlog", "list", "--json", program="tt")
        assert cli.returncode == 0, cli.stderr
        assert created.json()["task_id"] in cli.stdout
        task = _admin(tls_redis).hgetall(f"tt:{town_name}:task:{created.json()['task_id']}")
        assert task["description"] == "over TLS"
        # The connections are the ACL user's, over TLS (the socket has only the test's own client).
        users = {c["user"] for c in _admin(tls_redis).client_list() if c.get("laddr", "").endswith(f":{tls_redis.port}")}
        assert users == {USER}
    finally:
        assert proc.stop() == 0
    assert PASSWORD not in proc.output() and PASSWORD not in cli.stdout + cli.stderr


def test_the_password_can_come_from_tinytown_redis_password(
        tmp_path: Path, town_name: str, tls_redis: TlsRedis, pki: tuple[Path, trustme.CA]) -> None:
    town = _town(tmp_path, town_name, tls_redis.url(USER), tls_table(pki[0]))
    proc = TownhallProcess(town, env={"TINYTOWN_REDIS_PASSWORD": PASSWORD}).start()
    try:
        assert httpx.get(f"{proc.url}/v1/status", timeout=10).status_code == 200
    finally:
        assert proc.stop() == 0
    assert PASSWORD not in proc.output()


def test_a_client_certificate_is_presented_when_the_server_requires_one(
        tmp_path: Path, town_name: str, mtls_redis: TlsRedis, pki: tuple[Path, trustme.CA]) -> None:
    town = _town(tmp_path, town_name, mtls_redis.url(), tls_table(pki[0], client=True))
    proc = TownhallProcess(town).start()
    try:
        assert httpx.post(f"{proc.url}/v1/backlog", json={"description": "mtls"}, timeout=10).status_code == 201
    finally:
        assert proc.stop() == 0
    without = _town(tmp_path / "no-cert", town_name, mtls_redis.url(), tls_table(pki[0]))
    cli = run_cli("--town", str(without), "status", program="tt")
    assert cli.returncode == 1 and "Redis unavailable" in cli.stderr


def _refused_start(town: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "townhall"), "--town", str(town), "rest", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("how", ["url", "environment"])
def test_a_wrong_password_stops_townhall_with_one_line(
        tmp_path: Path, town_name: str, tls_redis: TlsRedis, pki: tuple[Path, trustme.CA], how: str) -> None:
    wrong = "Wr0ng-Pa55word"
    url = tls_redis.url(f"{USER}:{wrong}") if how == "url" else tls_redis.url(USER)
    town = _town(tmp_path, town_name, url, tls_table(pki[0]))
    done = _refused_start(town, {"TINYTOWN_REDIS_PASSWORD": wrong} if how == "environment" else None)
    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "refused the credentials" in lines[0] and f"@127.0.0.1:{tls_redis.port}" in lines[0]
    assert wrong not in lines[0] and PASSWORD not in lines[0]


def test_an_untrusted_certificate_stops_townhall_with_one_line(
        tmp_path: Path, town_name: str, tls_redis: TlsRedis) -> None:
    town = _town(tmp_path, town_name, tls_redis.url())  # no [redis.tls]: the system's CAs do not know trustme's
    done = _refused_start(town)
    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "not trusted" in lines[0] and "ca_file" in lines[0]
    assert PASSWORD not in lines[0]


def test_a_worker_with_a_wrong_password_stops_instead_of_retrying(
        tmp_path: Path, town_name: str, tls_redis: TlsRedis, pki: tuple[Path, trustme.CA]) -> None:
    town = _town(tmp_path, town_name, tls_redis.url(f"{USER}:nope-nope"), tls_table(pki[0]))
    done = subprocess.run([sys.executable, "-m", "townhall.cli.tt_cmd", "--town", str(town), "agent-loop"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "refused the credentials" in done.stderr and "nope-nope" not in done.stderr


@pytest.mark.parametrize(("redis_toml", "environ", "says"), [
    ('url = "redis://h:1"\n[redis.sentinel]\nhosts = ["127.0.0.1:26379"]\nservice_name = "m"', {},
     "redis.sentinel and redis.url (or REDIS_URL) are both set"),
    ('[redis.sentinel]\nhosts = ["127.0.0.1:26379"]\nservice_name = "m"', {"REDIS_URL": "redis://h:1"},
     "redis.sentinel and redis.url (or REDIS_URL) are both set"),
    ('[redis.sentinel]\nhosts = []\nservice_name = "m"', {}, "redis.sentinel.hosts: list at least one"),
    ('[redis.sentinel]\nhosts = ["a:1", "nohostport"]\nservice_name = "m"', {}, "redis.sentinel.hosts[1]"),
    ('[redis.sentinel]\nhosts = ["a:1"]', {}, "redis.sentinel.service_name: required key is missing"),
    ('url = "redis://:secret@h:1"\n[redis.tls]\nca_file = "ca.pem"', {}, "TLS needs a rediss:// URL"),
    ('[redis.tls]\ncert_file = "c.pem"', {}, "redis.tls: set, but Redis is not reached over TLS"),
    ('url = "rediss://h:1"\n[redis.tls]\nkey_file = "k.pem"', {}, "redis.tls.key_file"),
    ("wait_replicas = -1", {}, "redis.wait_replicas"),
])
def test_bad_redis_tables_are_one_clear_config_error(
        tmp_path: Path, redis_toml: str, environ: dict[str, str], says: str) -> None:
    (tmp_path / "tinytown.toml").write_text(f'name = "x"\n[redis]\n{redis_toml}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_town(tmp_path, environ=environ)
    assert says in str(raised.value) and "secret" not in str(raised.value)


def test_sentinel_and_url_together_stop_townhall_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "tinytown.toml").write_text(
        'name = "x"\n[redis.sentinel]\nhosts = ["127.0.0.1:26379"]\nservice_name = "m"\n', encoding="utf-8")
    done = run_cli("--town", str(tmp_path), "rest", env={"REDIS_URL": "redis://:secret@h:1"})
    assert done.returncode == 2
    assert done.stderr.strip() == ("townhall: tinytown.toml: redis.sentinel and redis.url (or REDIS_URL) are both "
                                   "set: Redis is found either through the sentinels or at the URL; remove one of them")
