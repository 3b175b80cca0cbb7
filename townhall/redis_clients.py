"""Redis clients for an endpoint: a URL (``redis://``, ``rediss://``, ``unix://``) or a Sentinel service,
with the endpoint's credentials and TLS files. :mod:`townhall.runtime` decides the timeouts for each role;
this module only knows how to connect.

With Sentinel, redis-py's ``SentinelConnectionPool`` asks the sentinels for the primary whenever it opens
a connection, so after a failover the next connection goes to the new primary by itself; a connection to a
demoted primary answers ``READONLY``, which redis-py turns into a ``ConnectionError`` (a 503 here) and a
reconnect.
"""

from __future__ import annotations

import ssl
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as asentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry as SyncRetry

from townhall.config import ConfigError
from townhall.config_redis import parse_host_port
from townhall.redis_endpoint import RedisEndpoint, version_problem
from townhall.redis_watchdog import watch


def connection_kwargs(endpoint: RedisEndpoint) -> dict[str, Any]:
    """Credentials and TLS options for the data connections (a URL's own user and password win)."""
    options: dict[str, Any] = {}
    if endpoint.username:
        options["username"] = endpoint.username
    if endpoint.password:
        options["password"] = endpoint.password
    tls = endpoint.tls
    if tls is not None:
        options.update(ssl_cert_reqs="required", ssl_check_hostname=tls.check_hostname)
        if tls.ca_file:
            options["ssl_ca_certs"] = tls.ca_file
        if tls.cert_file:
            options["ssl_certfile"] = tls.cert_file
        if tls.key_file:
            options["ssl_keyfile"] = tls.key_file
        if endpoint.sentinel is not None:
            options["ssl"] = True
    return options


def _sentinel_kwargs(endpoint: RedisEndpoint, socket_options: dict[str, Any], *, sync: bool) -> dict[str, Any]:
    assert endpoint.sentinel is not None
    # No retries (redis-py's default backs off for seconds): discover_master already asks each sentinel
    # in turn, and the data connection's own retry policy decides whether to ask again.
    options = {**socket_options, "retry": (SyncRetry if sync else AsyncRetry)(NoBackoff(), 0)}
    if endpoint.sentinel.password:
        options["password"] = endpoint.sentinel.password
    if endpoint.tls is not None:  # sentinels of a TLS deployment listen with TLS too (tls-port)
        options.update({k: v for k, v in connection_kwargs(endpoint).items() if k.startswith("ssl")})
    return options


def _sentinel_hosts(endpoint: RedisEndpoint) -> list[tuple[str, int]]:
    assert endpoint.sentinel is not None
    return [hp for hp in (parse_host_port(h) for h in endpoint.sentinel.hosts) if hp is not None]


class _Sentinels(asentinel.Sentinel):
    """redis-py's Sentinel, with a short ``MasterNotFoundError``: redis-py's lists the repr of every
    sentinel client, which would fill each 503 and log line with connection internals."""

    async def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            return await super().discover_master(service_name)
        except asentinel.MasterNotFoundError:
            raise asentinel.MasterNotFoundError(_no_primary(self.sentinels, service_name)) from None


class _SyncSentinels(redis.sentinel.Sentinel):
    def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            return super().discover_master(service_name)
        except redis.sentinel.MasterNotFoundError:
            raise redis.sentinel.MasterNotFoundError(_no_primary(self.sentinels, service_name)) from None


def _no_primary(sentinels: list[Any], service_name: str) -> str:
    where = ", ".join(f"{s.connection_pool.connection_kwargs.get('host')}:{s.connection_pool.connection_kwargs.get('port')}"
                      for s in sentinels)
    return f"no primary for {service_name!r} from the sentinels at {where}"


def async_client(endpoint: RedisEndpoint, *, socket_timeout: float | None, socket_connect_timeout: float,
                 watched: bool = False, **options: Any) -> aioredis.Redis:
    """An asyncio client (``decode_responses=True``) for ``endpoint``; ``options`` go to the pool. With
    ``watched``, a call's ``socket_timeout`` is kept by a :mod:`townhall.redis_watchdog` (cheaper per
    call; the sentinels' connections keep redis-py's own)."""
    socket = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_connect_timeout}
    watchdog = socket_timeout if watched else None
    data = {**socket, "socket_timeout": None} if watchdog else socket
    if endpoint.sentinel is None:
        client = aioredis.Redis.from_url(endpoint.url, decode_responses=True, **data, **options,
                                         **connection_kwargs(endpoint))
    else:
        sentinels = _Sentinels(_sentinel_hosts(endpoint),
                               sentinel_kwargs=_sentinel_kwargs(endpoint, socket, sync=False))
        client = sentinels.master_for(endpoint.sentinel.service_name, db=endpoint.sentinel.db,
                                      decode_responses=True, **data, **options, **connection_kwargs(endpoint))
    return watch(client, watchdog) if watchdog else client


def sync_client(endpoint: RedisEndpoint, *, timeout: float, decode_responses: bool = True) -> redis.Redis:
    """A blocking client for startup checks: one attempt, no retries."""
    socket = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    once = SyncRetry(NoBackoff(), 0)
    if endpoint.sentinel is None:
        return redis.Redis.from_url(endpoint.url, decode_responses=decode_responses, retry=once, **socket,
                                    **connection_kwargs(endpoint))
    sentinels = _SyncSentinels(_sentinel_hosts(endpoint),
                                        sentinel_kwargs=_sentinel_kwargs(endpoint, socket, sync=True))
    return sentinels.master_for(endpoint.sentinel.service_name, db=endpoint.sentinel.db, retry=once,
                                decode_responses=decode_responses, **socket, **connection_kwargs(endpoint))


async def close_async_client(client: aioredis.Redis) -> None:
    """Close ``client`` and, for a Sentinel client, its connections to the sentinels."""
    await client.aclose()
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    if manager is not None:
        await manager.aclose()


def close_sync_client(client: redis.Redis) -> None:
    client.close()
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", []):
        sentinel.close()


def startup_problem(exc: BaseException) -> str | None:
    """Why a failed first contact must stop startup (credentials refused, certificate not trusted), or
    ``None`` for an outage, which only means 503s until Redis answers. redis-py's messages never
    contain the password."""
    if isinstance(exc, redis.exceptions.AuthenticationError) or (
            isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith(("WRONGPASS", "NOAUTH"))):
        return f"refused the credentials ({exc}); check the URL's user, [redis] username/password " \
               "or TINYTOWN_REDIS_PASSWORD"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"presented a certificate that is not trusted ({cause.verify_message}); " \
                   "set [redis.tls] ca_file to the CA that signed it"
        if isinstance(cause, ssl.SSLError):
            return f"failed the TLS handshake ({cause.reason or cause}); check [redis.tls]"
        cause = cause.__cause__ or cause.__context__
    if "certificate verify failed" in str(exc):
        return f"presented a certificate that is not trusted ({exc}); set [redis.tls] ca_file"
    return None


def check_server(endpoint: RedisEndpoint, timeout: float = 2.0) -> None:
    """One conversation before serving: refuse a server that rejects the credentials or whose certificate
    is not trusted, and one too old for townhall. An unreachable server (or sentinel) is not an error
    here: requests get 503 until it answers."""
    client = sync_client(endpoint, timeout=timeout)
    try:
        info = client.info("server")
    except (redis.exceptions.RedisError, OSError, ValueError) as exc:
        problem = startup_problem(exc)
        if problem:
            raise ConfigError(f"townhall: Redis at {endpoint.redacted} {problem}") from None
        return
    finally:
        close_sync_client(client)
    problem = version_problem(info)
    if problem:
        raise ConfigError(f"townhall: Redis at {endpoint.redacted} {problem}")
