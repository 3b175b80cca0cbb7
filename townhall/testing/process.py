"""A real townhall process on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TownhallProcess:
    def __init__(self, town_dir: Path, *, port: int | None = None, args: list[str] | None = None,
                 env: dict[str, str] | None = None, scheme: str = "http") -> None:
        self.town_dir = town_dir
        self.port = port or free_port()
        self.args = args or []
        self.env = {**os.environ, **(env or {})}
        self.scheme = scheme
        self.process: subprocess.Popen[str] | None = None
        # One file per process: tests may run several townhalls (replicas) on one town.
        self.log_path = town_dir / f"townhall-test-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 60.0) -> "TownhallProcess":
        """Start it and (``wait``) wait until ``/health`` answers. A process that does not get there is
        stopped before the error is raised: a test that fails to start a server must not leave one
        running (on a loaded machine leaked servers are what slows the next start down)."""
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(BIN / "townhall"), "--town", str(self.town_dir), "rest", "--port", str(self.port), *self.args],
            stdout=log, stderr=subprocess.STDOUT, env=self.env, text=True,
        )
        if wait:
            try:
                self.wait_healthy(timeout)
            except BaseException:
                # SIGTERM first: with --workers, SIGKILL would leave its server processes running.
                try:
                    self.stop(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
                raise
        return self

    def wait_healthy(self, timeout: float = 60.0, **client_kwargs: object) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"townhall exited {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1, **client_kwargs).status_code == 200:  # type: ignore[arg-type]
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"townhall did not become healthy:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        return code


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 60.0, program: str = "townhall") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / program), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
