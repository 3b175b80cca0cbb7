"""Startup safety rules (reference §8 with the contract's additions): refuse to serve insecurely.

Each check raises :class:`StartupError` with the exact line to print; the CLI exits 1.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from townhall.config import TownConfig

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
