"""A whole town on one machine: ``tt up`` starts what it needs, ``tt down`` stops it, ``tt ps`` lists it.

``tt up`` runs a supervisor: the town's private Redis when nothing answers where the town's Redis is
configured, one townhall, and N pool workers, each in a session of its own (so a Ctrl-C in the
terminal reaches only the supervisor), their output in one log with a ``name | `` prefix per line. On
SIGINT/SIGTERM it stops them in order: the workers first (each hands back its task and exits 0), then
townhall, then the private Redis — unless another process of the town still uses it, which then stops
it as the last one out (:func:`townhall.redis_endpoint.release_private_server`).

Every process writes its pid to ``.tt/run/<name>.pid`` while it runs: ``tt down`` signals the
supervisor (``up.pid``) and waits for it, ``tt ps`` reads them all. ``--detach`` runs the same
supervisor in the background, logging to ``.tt/logs/town.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterator

import msgspec
import redis

from townhall.config import Town
from townhall.processes import has_ended
from townhall.readiness import NOTIFY_ENV, ReadySockets
from townhall.redis_endpoint import RedisEndpoint, client_name, release_private_server, resolve_endpoint

RUN_DIR = ".tt/run"
SUPERVISOR = "up"
TOWN_LOG = ".tt/logs/town.log"
#: How long each stage of a shutdown may take before its processes are killed.
STOP_SECS = 30.0
#: How long the processes may take to say they are ready (a worker: its agent registered) before
#: ``tt up`` reports the town up without them.
READY_SECS = 120.0


class TownProcess(msgspec.Struct, frozen=True):
    """One line of ``tt ps``."""

    name: str
    pid: int
    running: bool


def run_dir(town: Town) -> Path:
    return town.root / RUN_DIR


def is_running(pid: int) -> bool:
    return pid > 0 and not has_ended(pid)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def town_processes(town: Town) -> list[TownProcess]:
    """The processes ``tt up`` recorded (and the private Redis), running or left as stale pid files."""
    found = []
    paths = sorted(run_dir(town).glob("*.pid")) if run_dir(town).is_dir() else []
    redis_pid = town.root / ".tt" / "redis.pid"
    for path in [*paths, *([redis_pid] if redis_pid.exists() else [])]:
        pid = _read_pid(path)
        if pid is not None:
            found.append(TownProcess(name=path.stem, pid=pid, running=is_running(pid)))
    return found


def supervisor_pid(town: Town) -> int | None:
    """The running supervisor's pid, or ``None`` (a stale pid file is ignored)."""
    pid = _read_pid(run_dir(town) / f"{SUPERVISOR}.pid")
    return pid if pid is not None and is_running(pid) else None


def down(town: Town, timeout: float = 3 * STOP_SECS) -> int | None:
    """Stop a running ``tt up`` and wait until it has stopped everything; its pid, or ``None`` when
    nothing was running (stale pid files are removed)."""
    pid = supervisor_pid(town)
    if pid is None:
        for path in run_dir(town).glob("*.pid") if run_dir(town).is_dir() else []:
            if not is_running(_read_pid(path) or 0):
                path.unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"tt up (pid {pid}) did not stop within {timeout:.0f}s")
        time.sleep(0.1)
    return pid


def detach(town: Town, workers: int, timeout: float = READY_SECS + 30.0) -> int:
    """Run ``tt up`` in the background; returns its pid once townhall and the workers are ready (or
    the supervisor has said which are not)."""
    log_path = town.root / TOWN_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "townhall.cli.tt_cmd", "--town", str(town.root), "up", "--workers", str(workers)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    ready = run_dir(town) / "ready"
    deadline = time.monotonic() + timeout
    while not (ready.exists() and _read_pid(ready) == proc.pid):
        if proc.poll() is not None:
            raise RuntimeError(f"tt up exited with status {proc.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"tt up did not start within {timeout:.0f}s; see {log_path}")
        time.sleep(0.05)
    return proc.pid


class Supervisor:
    """The foreground ``tt up``: start, wait for a signal, stop in order."""

    def __init__(self, town: Town, workers: int, out: IO[str]) -> None:
        self.town = town
        self.workers = workers
        self.out = out
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._pumps: list[threading.Thread] = []
        self._ready: set[str] = set()
        self._sockets = ReadySockets(Path(tempfile.mkdtemp(prefix="tt-up-")))

    def run(self) -> int:
        run = run_dir(self.town)
        run.mkdir(parents=True, exist_ok=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        (run / f"{SUPERVISOR}.pid").write_text(str(os.getpid()))
        endpoint: RedisEndpoint | None = None
        hold: redis.Redis | None = None
        try:
            endpoint, _ = resolve_endpoint(self.town)
            self.say("up", f"Redis {endpoint.redacted}{' (private server)' if endpoint.private else ''}")
            if endpoint.private:
                # Held open until the end: a short command that ends while the town starts must not
                # take this for an unused server and stop it.
                hold = redis.Redis.from_url(endpoint.url, client_name=client_name())
                hold.ping()
            self._spawn("townhall", [sys.executable, "-m", "townhall", "--town", str(self.town.root), "rest"])
            for number in range(1, self.workers + 1):
                self._spawn(f"worker-{number}", [sys.executable, "-m", "townhall.cli.tt_cmd", "--town",
                                                 str(self.town.root), "agent-loop"])
            if not self._wait_ready():
                return 0
            (run / "ready").write_text(str(os.getpid()))
            while not self.stopping.wait(0.5):
                if not any(child.poll() is None for child in self._children.values()):
                    self.say("up", "every process of the town has exited")
                    break
            return 0
        finally:
            self._stop([n for n in self._children if n.startswith("worker-")])
            self._stop(["townhall"])
            if hold is not None:
                hold.close()
            if endpoint is not None and endpoint.private:
                left = not release_private_server(endpoint)
                self.say("up", "private Redis left running for the town's other processes" if left
                         else "private Redis stopped")
            for pump in self._pumps:
                pump.join(timeout=5)
            self._sockets.close()
            (run / "ready").unlink(missing_ok=True)
            (run / f"{SUPERVISOR}.pid").unlink(missing_ok=True)
            self.say("up", "town is down")

    def _wait_ready(self) -> bool:
        """Wait until every process has said it is ready (:mod:`townhall.readiness`), exited, or
        ``READY_SECS`` passed, and say how the town came up; ``False`` when a signal came first."""
        waiting = set(self._children)
        deadline = time.monotonic() + READY_SECS
        while waiting and not self.stopping.is_set() and time.monotonic() < deadline:
            said = self._sockets.wait(waiting, min(0.5, max(deadline - time.monotonic(), 0)))
            self._ready |= said
            waiting = {name for name in waiting - said if self._children[name].poll() is None}
        if self.stopping.is_set():
            return False
        missing = sorted(set(self._children) - self._ready)
        if not missing:
            self.say("up", f"town {self.town.name} is up: townhall and {self.workers} worker(s); "
                           "Ctrl-C or `tt down` stops it")
        else:
            exited = [n for n in missing if self._children[n].poll() is not None]
            silent = [n for n in missing if n not in exited]
            why = []
            if exited:
                why.append(f"exited while starting: {', '.join(exited)}")
            if silent:
                why.append(f"not ready after {READY_SECS:.0f}s: {', '.join(silent)}")
            self.say("up", f"town {self.town.name} is partly up: {'; '.join(why)}; Ctrl-C or `tt down` stops it")
        return True

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{name:<10} | {line}\n")
            self.out.flush()

    def _spawn(self, name: str, args: list[str]) -> None:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=self.town.root,
                                env={**os.environ, "PYTHONUNBUFFERED": "1",
                                     NOTIFY_ENV: self._sockets.address(name)})
        self._children[name] = proc
        (run_dir(self.town) / f"{name}.pid").write_text(str(proc.pid))
        pump = threading.Thread(target=self._pump, args=(name, proc), daemon=True)
        pump.start()
        self._pumps.append(pump)

    def _pump(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in _lines(proc.stdout):
            self.say(name, raw)

    def _stop(self, names: list[str]) -> None:
        """SIGTERM ``names`` together, wait for all; the ones still running after ``STOP_SECS`` are
        killed."""
        procs = {n: self._children[n] for n in names if n in self._children}
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECS
        for name, proc in procs.items():
            try:
                code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            self.say("up", f"{name} exited with status {code}"
                           + ("" if name in self._ready else " before it was ready"))
            (run_dir(self.town) / f"{name}.pid").unlink(missing_ok=True)


def _lines(stream: IO[bytes]) -> Iterator[str]:
    for raw in iter(stream.readline, b""):
        yield raw.decode("utf-8", "replace").rstrip("\n")
