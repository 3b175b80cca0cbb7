"""``[townhall] workers = N``: N server processes on one listening socket, under uvicorn's supervisor.

The parent (``townhall rest``) does everything that must happen once — the startup checks, finding or
starting the town's private Redis, the banner, binding the port — and then only supervises: uvicorn's
``Multiprocess`` spawns the processes, hands each the one socket (the kernel spreads connections over
them), restarts one that dies, and on SIGTERM/SIGINT stops them all, each finishing its requests
(``timeout_graceful_shutdown``). Each process builds its own runtime and app from the pickled
:class:`ServerProcessApp` and runs its own upkeep: the sweeps and the reconcile are atomic per record in
Redis, so several processes (like several replicas) running them at once is safe
(``docs/scaling-out.md``). The parent stops the private Redis only after the last process has ended.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import Any, Callable

import msgspec
import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from townhall.config import ConfigError, Town
from townhall.readiness import notify_ready
from townhall.redis_endpoint import RedisEndpoint
from townhall.registry import UnknownPluginName
from townhall.server_env import PROCESSES_ENV, SHARED_DIR_ENV

log = logging.getLogger("townhall")

#: How long a server process may take to answer the supervisor's health ping before it is replaced;
#: generous, since on a busy machine a process starting up shares its cores with everything else.
HEALTHCHECK_SECS = 30


class ServerProcessApp(msgspec.Struct, frozen=True):
    """The app factory a server process calls (uvicorn ``factory=True``); pickled to each process."""

    town: Town
    endpoint: RedisEndpoint
    #: Sets up logging in the new process as the command did in the parent (a picklable callable).
    setup_logging: Callable[[], None] | None = None

    def __call__(self) -> Any:
        from townhall.app import create_app, load_auth_mode
        from townhall.config_reload import hangup_handler
        from townhall.plugins import load_plugins
        from townhall.runtime import Role, build_runtime

        if self.setup_logging is not None:
            self.setup_logging()
        audit = self.town.config.townhall.audit
        if audit.file:
            # Each process rotates its own file: handlers of several processes rotating one file would
            # rename it under each other (and drop backups early).
            path = Path(audit.file)
            audit.file = str(path.with_name(f"{path.stem}.{os.getpid()}{path.suffix}"))
        try:
            plugins = load_plugins()
            auth = load_auth_mode(self.town, plugins.registry)
            # The supervisor passes SIGHUP on: this process reloads its own config, as one process does.
            signal.signal(signal.SIGHUP, hangup_handler(self.town, plugins))
            return create_app(build_runtime(self.town, plugins, role=Role.SERVER, endpoint=self.endpoint), auth=auth)
        except (UnknownPluginName, ConfigError) as exc:
            # The parent checked the same config: this is an install that changed under it. Exiting
            # with uvicorn's startup-failure status stops the parent instead of a restart loop.
            log.error("townhall: %s", str(exc).removeprefix("townhall: "))
            sys.exit(STARTUP_FAILURE)


def shared_dir(town: Town, port: int) -> Path:
    """``<town>/.tt/run/townhall-<port>``: the server processes' shared directory, one per port (two
    townhalls of one town on two ports must not share it)."""
    return town.state_dir / "run" / f"townhall-{port}"


class _Supervisor(Multiprocess):
    """uvicorn's supervisor, except on SIGHUP: uvicorn restarts every process, which would start them
    with the config the parent pickled at startup; here ``on_hangup`` reloads the parent's copy and each
    process is sent SIGHUP to reload its own (a file that does not load is refused, serving goes on)."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], on_hangup: Callable[[], None]) -> None:
        super().__init__(config, sockets=sockets)
        self._on_hangup = on_hangup

    def init_processes(self) -> None:
        super().init_processes()
        # Ready once every process is started: connections wait in the listener's backlog until one
        # of them accepts.
        notify_ready()

    def handle_hup(self) -> None:
        self._on_hangup()
        for process in self.processes:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)


def serve_processes(config: uvicorn.Config, listener: socket.socket, shared: Path,
                    on_hangup: Callable[[], None] = lambda: None) -> bool:
    """Serve ``config`` (its app a :class:`ServerProcessApp`, ``workers`` > 1) from ``listener`` until
    SIGTERM/SIGINT, with ``shared`` emptied for the processes; ``False`` when a process could not start
    (the config or the app is broken). SIGHUP calls ``on_hangup`` and is passed on to the processes."""
    config.timeout_worker_healthcheck = HEALTHCHECK_SECS
    # What an earlier run left (its processes' counters) must not add to this one's.
    shutil.rmtree(shared, ignore_errors=True)
    shared.mkdir(parents=True, mode=0o700)
    # The spawned processes inherit the environment as it is when they start.
    os.environ[PROCESSES_ENV] = str(config.workers)
    os.environ[SHARED_DIR_ENV] = str(shared)
    supervisor = _Supervisor(config, [listener], on_hangup)
    supervisor.run()
    return not any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
