"""A real Redis (or Valkey) server on a unix socket, which tests may stop, restart and kill."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from townhall.redis_endpoint import ping, server_binary


class RedisServer:
    def __init__(self, directory: Path, *, persistent: bool = False, args: list[str] | None = None,
                 password: str | None = None) -> None:
        """``persistent``: an append-only file (fsync always), so data survives stop/start; ``args``: more
        server options (a TLS port, ACL users…); ``password``: the default user's (``requirepass``)."""
        self.directory = directory
        self.persistent = persistent
        self.args = args or []
        self.password = password
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def admin_url(self) -> str:
        """The socket URL with the default user's password, if any."""
        return f"{self.url}?password={self.password}" if self.password else self.url

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.socket.exists():
            self.socket.unlink()
        self.process = subprocess.Popen(
            [server_binary(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--dir", str(self.directory), "--save", "",
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]),
             "--logfile", str(self.directory / "redis.log"),
             *(["--requirepass", self.password] if self.password else []), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.socket.exists() and ping(self.admin_url, timeout=0.5):
                return
            time.sleep(0.02)
        raise RuntimeError("test Redis did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
