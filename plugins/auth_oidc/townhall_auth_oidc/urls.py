"""Which URLs signing keys may be fetched from: the one rule for configured and discovered URLs."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_fetchable_url(url: str) -> bool:
    """Keys must come over TLS; plain http is tolerated for a loopback host (development, tests).

    "Loopback" is ``localhost`` or a loopback IP literal: a name is not resolved, since what it
    resolves to can change between this check and the fetch."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" IPv6 bracket
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _is_loopback(parts.hostname)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
