"""HTTPS and mTLS are really served: real handshakes with trustme certificates."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from townhall.testing.process import TownhallProcess, run_cli


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    files = {
        "ca": tmp_path / "ca.pem",
        "server": tmp_path / "server.pem",
        "client": tmp_path / "client.pem",
        "stranger": tmp_path / "stranger.pem",
        "garbage": tmp_path / "garbage.pem",
    }
    ca.cert_pem.write_to_path(files["ca"])
    server.private_key_and_cert_chain_pem.write_to_path(files["server"])
    ca.issue_cert("ops@example.com").private_key_and_cert_chain_pem.write_to_path(files["client"])
    other_ca.issue_cert("ops@example.com").private_key_and_cert_chain_pem.write_to_path(files["stranger"])
    files["garbage"].write_text("-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n")
    return files


def _ctx(ca: Path, cert: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert))
    return context


def _configure(town_dir: Path, text: str) -> None:
    with (town_dir / "tinytown.toml").open("a") as f:
        f.write(text)


def _no_http_reply(url: str, **kwargs: object) -> None:
    with pytest.raises((httpx.HTTPError, ssl.SSLError, OSError)):
        httpx.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_https_is_served_and_plain_http_fails(town_dir: Path, pki: dict[str, Path]) -> None:
    _configure(town_dir, f'[townhall.tls]\nenabled = true\ncert_file = "{pki["server"]}"\nkey_file = "{pki["server"]}"\n')
    proc = TownhallProcess(town_dir, scheme="https")
    proc.start(wait=False)
    try:
        proc.wait_healthy(verify=_ctx(pki["ca"]))
        response = httpx.get(f"{proc.url}/health", verify=_ctx(pki["ca"]))
        assert response.status_code == 200 and response.json()["status"] == "ok"
        _no_http_reply(f"http://127.0.0.1:{proc.port}/health")
        assert "🔒 TLS enabled" in proc.output()
    finally:
        proc.stop()


def test_mtls_required_refuses_clients_without_a_trusted_certificate(town_dir: Path, pki: dict[str, Path]) -> None:
    _configure(town_dir, f'[townhall.tls]\nenabled = true\ncert_file = "{pki["server"]}"\nkey_file = "{pki["server"]}"\n'
                         f'[townhall.mtls]\nenabled = true\nrequired = true\nca_file = "{pki["ca"]}"\n')
    proc = TownhallProcess(town_dir, scheme="https")
    proc.start(wait=False)
    try:
        proc.wait_healthy(verify=_ctx(pki["ca"], pki["client"]))
        ok = httpx.get(f"{proc.url}/health", verify=_ctx(pki["ca"], pki["client"]))
        assert ok.status_code == 200
        _no_http_reply(f"{proc.url}/health", verify=_ctx(pki["ca"]))
        _no_http_reply(f"{proc.url}/health", verify=_ctx(pki["ca"], pki["stranger"]))
        # Raw handshake without a client certificate: no HTTP bytes ever come back.
        context = ssl.create_default_context(cafile=str(pki["ca"]))
        with socket.create_connection(("127.0.0.1", proc.port), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, OSError)):
                with context.wrap_socket(raw, server_hostname="localhost") as tls_sock:
                    tls_sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    if not tls_sock.recv(1024):
                        raise ssl.SSLError("closed without reply")
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[townhall.tls]\nenabled = true\n",
         "❌ FATAL: TLS configuration error: TLS enabled but cert_file is not configured"),
        ('[townhall.tls]\nenabled = true\ncert_file = "{server}"\n',
         "❌ FATAL: TLS configuration error: TLS enabled but key_file is not configured"),
        ('[townhall.tls]\nenabled = true\ncert_file = "/nope.pem"\nkey_file = "{server}"\n',
         "❌ FATAL: TLS configuration error: TLS cert_file does not exist"),
        ('[townhall.tls]\nenabled = true\ncert_file = "{server}"\nkey_file = "/nope.pem"\n',
         "❌ FATAL: TLS configuration error: TLS key_file does not exist"),
        ('[townhall.tls]\nenabled = true\ncert_file = "{garbage}"\nkey_file = "{server}"\n',
         "❌ FATAL: TLS configuration error: cannot load cert_file/key_file"),
        ('[townhall.tls]\nenabled = true\ncert_file = "{server}"\nkey_file = "{server}"\n'
         "[townhall.mtls]\nrequired = true\n",
         "❌ FATAL: mTLS configuration error: mTLS required but ca_file is not configured"),
        ('[townhall.tls]\nenabled = true\ncert_file = "{server}"\nkey_file = "{server}"\n'
         '[townhall.mtls]\nenabled = true\nca_file = "/nope.pem"\n',
         "❌ FATAL: mTLS configuration error: mTLS ca_file does not exist"),
        ('[townhall.tls]\nenabled = true\ncert_file = "{server}"\nkey_file = "{server}"\n'
         '[townhall.mtls]\nenabled = true\nca_file = "{garbage}"\n',
         "❌ FATAL: mTLS configuration error: cannot load ca_file"),
        ("[townhall.mtls]\nrequired = true\n",
         "❌ FATAL: mTLS configuration error: mTLS requires [townhall.tls] enabled = true"),
    ],
)
def test_tls_startup_checks(town_dir: Path, pki: dict[str, Path], section: str, message: str) -> None:
    _configure(town_dir, section.format(server=pki["server"], garbage=pki["garbage"]))
    result = run_cli("--town", str(town_dir), "rest", "--port", "18998")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(message)
