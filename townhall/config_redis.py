"""``[redis]`` of ``tinytown.toml``: where Redis is (URL, socket, TCP or Sentinel), how to log in, TLS, and
how many replicas must have a write before it counts (docs/configuration.md, docs/high-availability.md).

A separate module from :mod:`townhall.config` because the Redis table grew its own sub-tables and rules;
:func:`redis_config_problem` is what :func:`townhall.config.load_town` checks once the environment
(``REDIS_URL``, ``TINYTOWN_REDIS_PASSWORD``) has been applied.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class SentinelConfig(msgspec.Struct, kw_only=True):
    """``[redis.sentinel]``: find the primary through Redis Sentinel (redis-py's ``Sentinel``)."""

    #: ``"host:port"`` of each sentinel (``"[::1]:26379"`` for IPv6).
    hosts: list[str]
    #: The name the sentinels monitor the primary under (``sentinel monitor <name> …``).
    service_name: Annotated[str, msgspec.Meta(min_length=1)]
    #: The sentinels' own password (``requirepass`` in sentinel.conf); the primary's is ``[redis].password``.
    password: str | None = None
    db: NonNegative = 0


class RedisTlsConfig(msgspec.Struct, kw_only=True):
    """``[redis.tls]``: verify the server against ``ca_file`` (else the system's CAs) and, when
    ``cert_file`` is set, present a client certificate."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    #: The server's certificate must name the host connected to (turn off only for a CA you own).
    check_hostname: bool = True


class RedisConfig(msgspec.Struct, kw_only=True):
    url: str | None = None
    use_socket: bool = True
    socket_path: str = ".tt/redis.sock"
    host: str = "127.0.0.1"
    port: Port = 6379
    persist: bool = False
    aof_path: str = ".tt/redis.aof"
    #: An ACL user (``AUTH username password``); a user in the URL wins.
    username: str | None = None
    password: str | None = None
    tls_enabled: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca_cert: str | None = None
    bind: str = "127.0.0.1"
    sentinel: SentinelConfig | None = None
    tls: RedisTlsConfig | None = None
    #: After a write that must survive a failover (task creation, assignment, completion), wait until
    #: this many replicas have it (Redis ``WAIT``); 0: acknowledge once the primary has it.
    wait_replicas: NonNegative = 0
    wait_timeout_ms: Positive = 1000


def parse_host_port(entry: str) -> tuple[str, int] | None:
    """``("host", port)`` of ``"host:port"`` / ``"[v6]:port"``, or ``None`` if it is not that."""
    host, colon, port = entry.strip().rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not colon or not host or ":" in host and not entry.strip().startswith("[") or not port.isdigit():
        return None
    number = int(port)
    return (host, number) if 0 < number < 65536 else None


def redis_config_problem(cfg: RedisConfig, request_timeout_ms: int) -> str | None:
    """What is wrong with ``[redis]`` as a whole (``key: why``), or ``None``."""
    if cfg.wait_replicas and cfg.wait_timeout_ms >= min(request_timeout_ms, 10_000):
        return (f"redis.wait_timeout_ms: {cfg.wait_timeout_ms} must be below the request deadline "
                f"([townhall] request_timeout_ms, at most 10000 as a Redis socket timeout): a WAIT must end "
                "before the request does")
    if cfg.sentinel is not None:
        if cfg.url and cfg.url.strip():
            return ("redis.sentinel and redis.url (or REDIS_URL) are both set: Redis is found either through "
                    "the sentinels or at the URL; remove one of them")
        if not cfg.sentinel.hosts:
            return "redis.sentinel.hosts: list at least one sentinel as \"host:port\""
        for index, entry in enumerate(cfg.sentinel.hosts):
            if parse_host_port(entry) is None:
                return f"redis.sentinel.hosts[{index}]: expected \"host:port\", got {entry!r}"
    if cfg.tls is not None:
        if cfg.tls.key_file and not cfg.tls.cert_file:
            return "redis.tls.key_file: set without redis.tls.cert_file (the client certificate)"
        url = (cfg.url or "").strip()
        if not url and cfg.sentinel is None and (cfg.use_socket or not cfg.tls_enabled):
            return ("redis.tls: set, but Redis is not reached over TLS: use a rediss:// url, or "
                    "use_socket = false with tls_enabled = true")
        if url and not url.lower().startswith("rediss://"):
            scheme, sep, _ = url.partition("://")
            shown = f"a {scheme}:// URL" if sep and scheme.isalnum() else "not a URL"
            return f"redis.tls: TLS needs a rediss:// URL, but redis.url (or REDIS_URL) is {shown}"
    return None
