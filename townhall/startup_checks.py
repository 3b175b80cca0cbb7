"""Startup safety rules (reference §8 with the contract's additions): refuse to serve insecurely.

Each check raises :class:`StartupError` with the exact line to print; the CLI exits 1.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from pathlib import Path

import msgspec

from townhall.config import Town, TownConfig

log = logging.getLogger("townhall")


class StartupError(Exception):
    """A fatal startup problem; ``str()`` is the line shown (exit status 1)."""


def resolve_bind(host: str) -> list[str]:
    """Every address ``host`` stands for; hostnames and bracketed/bare IPv6 are accepted."""
    bare = host.strip().strip("[]")
    try:
        return [str(ipaddress.ip_address(bare))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(bare, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(f"❌ FATAL: cannot resolve bind address '{host}': {exc.strerror}") from None
    return sorted({str(info[4][0]) for info in infos})


def is_loopback_bind(host: str) -> bool:
    return all(ipaddress.ip_address(addr.split("%")[0]).is_loopback for addr in resolve_bind(host))


def display_addr(host: str, port: int) -> str:
    bare = host.strip().strip("[]")
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def check_bind_safety(config: TownConfig, host: str, port: int) -> None:
    mode = config.townhall.auth.mode
    if is_loopback_bind(host):
        return
    addr = display_addr(host, port)
    if mode == "none":
        raise StartupError(
            f"❌ FATAL: Binding to non-loopback address {addr} with auth.mode=none is not allowed. "
            "Configure API key or OIDC authentication, or bind to 127.0.0.1."
        )
    if mode == "api_key":
        log.warning(
            "⚠️  Running API key authentication on non-loopback address %s. "
            "Consider using OIDC for production deployments.",
            addr,
        )


class TlsFiles(msgspec.Struct, frozen=True):
    """What uvicorn needs to serve HTTPS (and verify client certificates for mTLS)."""

    cert_file: str
    key_file: str
    ca_file: str | None
    cert_reqs: int


def check_tls(town: Town) -> TlsFiles | None:
    """Validate ``[townhall.tls]``/``[townhall.mtls]`` by loading the files, not only finding them."""
    tls, mtls = town.config.townhall.tls, town.config.townhall.mtls
    if not tls.enabled:
        if mtls.enabled or mtls.required:
            raise StartupError("❌ FATAL: mTLS configuration error: mTLS requires [townhall.tls] enabled = true")
        return None
    cert = _tls_path(town, tls.cert_file, "cert_file")
    key = _tls_path(town, tls.key_file, "key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise StartupError(
            f"❌ FATAL: TLS configuration error: cannot load cert_file/key_file: {_ssl_reason(exc)}"
        ) from None
    ca: str | None = None
    if mtls.enabled or mtls.required:
        if mtls.ca_file:
            ca_path = _resolve(town, mtls.ca_file)
            if not ca_path.is_file():
                raise StartupError("❌ FATAL: mTLS configuration error: mTLS ca_file does not exist")
            try:
                context.load_verify_locations(cafile=str(ca_path))
            except (ssl.SSLError, OSError) as exc:
                raise StartupError(
                    f"❌ FATAL: mTLS configuration error: cannot load ca_file: {_ssl_reason(exc)}"
                ) from None
            ca = str(ca_path)
        elif mtls.required:
            raise StartupError("❌ FATAL: mTLS configuration error: mTLS required but ca_file is not configured")
        else:
            # Without a CA nothing could verify a presented certificate: "mTLS enabled" would be a lie.
            raise StartupError(
                "❌ FATAL: mTLS configuration error: mTLS enabled but ca_file is not configured "
                "(nothing could verify client certificates)"
            )
    if mtls.required:
        reqs = ssl.CERT_REQUIRED
    elif ca is not None:
        reqs = ssl.CERT_OPTIONAL
    else:
        reqs = ssl.CERT_NONE
    return TlsFiles(cert_file=cert, key_file=key, ca_file=ca, cert_reqs=reqs)


def _tls_path(town: Town, value: str | None, key: str) -> str:
    if not value:
        raise StartupError(f"❌ FATAL: TLS configuration error: TLS enabled but {key} is not configured")
    path = _resolve(town, value)
    if not path.is_file():
        raise StartupError(f"❌ FATAL: TLS configuration error: TLS {key} does not exist")
    return str(path)


def _resolve(town: Town, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else town.root / path


def _ssl_reason(exc: Exception) -> str:
    return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
