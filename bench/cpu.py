"""CPU time per request of each app, in-process: ``python -m bench.cpu [--profile "GET /v1/status"]``.

A measure that machine load disturbs much less than a rate over HTTP: the ASGI app is called directly
(no uvicorn, no sockets to the client), the same requests for townhall and the baseline, and the
process's CPU time (``time.process_time``) per request is taken, the best of several rounds. Redis's own
time is not included (it is another process). ``--profile`` runs cProfile over one route of townhall and
prints the top functions (``SORT=cumtime``, ``TOP=60`` to change the listing; ``PROFILE_APP=baseline`` profiles
the baseline instead, ``PROFILE_OUT=file`` keeps the stats, ``CALLERS=regex`` lists who calls what matches);
``EXTRA`` is TOML added to the town's config (e.g. ``EXTRA=$'[townhall.metrics]\nexporters = []\n'`` to see what metrics cost).

``--http`` sends the requests as bytes through uvicorn's HTTP protocol instead, on uvloop, one keep-alive
connection each, still in-process (no socket: a transport that counts what is written): httptools
parsing, uvicorn's request cycle and, for townhall, its connection guard and coalesced writes, each app
with the uvicorn options its server uses. That is what the throughput bench measures, less the system
calls, and far less disturbed by the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.throughput import ROUTES, Route, seed_many
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import write_town


def _asgi_call(app: Any, route: Route) -> Any:
    """One request to ``app`` through the ASGI interface, the body discarded."""
    path, _, query = route.path.partition("?")
    headers = [(b"host", b"bench")]
    if route.body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(route.body)).encode())]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": route.method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": route.body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    async def call() -> int:
        await app(dict(scope), receive, send)
        return status.pop()

    return call


class _CountingTransport:
    """The transport an HTTP protocol writes to, in place of a socket: it keeps the status of the last
    response started."""

    def __init__(self) -> None:
        self.status = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 "):
            self.status = int(data[9:12])

    def writelines(self, pieces: Any) -> None:
        self.write(b"".join(pieces))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 80), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


def log_as_the_server() -> None:
    """Logging set up as ``townhall`` sets it up (every audit line formatted and written), to
    ``/dev/null`` as the throughput bench sends the servers' output."""
    import logging

    from townhall.cli.common import setup_logging

    setup_logging(False)
    for handler in logging.getLogger().handlers:
        handler.setStream(open(os.devnull, "w"))  # type: ignore[attr-defined]


def run_in_loop(main: Any, *, http: bool) -> None:
    """Run ``main``: on uvloop for requests through the HTTP protocol (as both servers run), else on
    asyncio's own loop."""
    if not http:
        asyncio.run(main)
        return
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def http_options(name: str, app: Any) -> dict[str, Any]:
    """The uvicorn options the server of ``name`` (``baseline`` or ``townhall``) runs ``app`` with
    (townhall's: ``townhall/server.py``, its connection guard included; the baseline's: the defaults)."""
    if name == "baseline":
        return {"http": "httptools"}
    from townhall.connection_guard import ConnectionGuard
    from townhall.server import connection_limits

    guard = ConnectionGuard(connection_limits(app.state.ctx.town))
    return {"http": guard.protocol_factory(), "proxy_headers": False,
            "limit_concurrency": guard.limits.max_connections + 1}


def _http_call(app: Any, route: Route, **options: Any) -> Any:
    """One request to ``app`` as bytes through a uvicorn HTTP protocol built with ``options`` (those of
    ``uvicorn.Config``), over one keep-alive connection."""
    import uvicorn
    from uvicorn.server import ServerState

    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, server_header=False, **options)
    config.load()
    protocol: Any = None
    transport = _CountingTransport()
    head = [f"{route.method} {route.path} HTTP/1.1", "Host: bench"]
    if route.body:
        head += ["Content-Type: application/json", f"Content-Length: {len(route.body)}"]
    payload = ("\r\n".join(head) + "\r\n\r\n").encode() + route.body
    done: asyncio.Future[None] | None = None

    async def call() -> int:
        nonlocal protocol, done
        loop = asyncio.get_running_loop()
        if protocol is None:
            protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={},
                                                  _loop=loop)
            protocol.connection_made(transport)
            finish = protocol.on_response_complete

            def completed() -> None:  # the cycle calls this at the response's end
                finish()
                assert done is not None
                done.set_result(None)

            protocol.on_response_complete = completed
        done = loop.create_future()
        protocol.data_received(payload)
        await done
        return transport.status

    return call


async def _lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    return task, inbox


async def _measure(apps: dict[str, Any], routes: list[Route], requests: int, rounds: int,
                   profile: str | None, http: bool) -> None:
    if http:
        calls = {name: [_http_call(app, r, **http_options(name, app)) for r in routes] for name, app in apps.items()}
    else:
        calls = {name: [_asgi_call(app, r) for r in routes] for name, app in apps.items()}
    print(f"{'route':40} {'baseline µs':>12} {'townhall µs':>12} {'ratio':>6}")
    for i, route in enumerate(routes):
        best: dict[str, float] = {}
        for _ in range(rounds):
            for name in apps:
                call = calls[name][i]
                for _ in range(20):
                    assert (await call()) < 300, (name, route.label)
                started = time.process_time()
                for _ in range(requests):
                    await call()
                spent = (time.process_time() - started) / requests * 1e6
                best[name] = min(best.get(name, spent), spent)
        print(f"{route.label:40} {best['baseline']:12.0f} {best['townhall']:12.0f} "
              f"{best['baseline'] / best['townhall']:6.2f}")
        if profile and route.label.startswith(profile):
            profiler = cProfile.Profile()
            call = calls[os.environ.get("PROFILE_APP", "townhall")][i]
            profiler.enable()
            for _ in range(requests * 2):
                await call()
            profiler.disable()
            stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
            stats.print_stats(int(os.environ.get("TOP", "35")))
            if os.environ.get("PROFILE_OUT"):
                stats.dump_stats(os.environ["PROFILE_OUT"])
            if os.environ.get("CALLERS"):
                stats.print_callers(os.environ["CALLERS"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--agents", type=int, default=10, help="agents in the town (10, or 1000 for size)")
    parser.add_argument("--profile", help="a route label to profile with cProfile")
    parser.add_argument("--http", action="store_true", help="through uvicorn's HTTP protocol (see above)")
    args = parser.parse_args(argv)

    from bench.baseline import build
    from townhall.app import create_app
    from townhall.config import load_town
    from townhall.plugins import load_plugins
    from townhall.runtime import build_runtime

    log_as_the_server()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "redis").mkdir()
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        town_dir = Path(tmp) / "town"
        town_dir.mkdir()
        write_town(town_dir, "bench", redis_url=server.url,
                   extra=os.environ.get("EXTRA", "") + "[agent]\nlauncher = \"none\"\nstale_after_secs = 86400\n")
        seed_many(server.url, "bench", args.agents)
        routes = [r for r in ROUTES if r.path != "/v1/tasks/assign" or args.agents == 10]
        routes = [r for r in routes if args.agents == 10 or r.path in ("/v1/status", "/v1/agents")]

        async def run() -> None:
            town = load_town(town_dir)
            apps = {"baseline": build(server.url, "bench"),
                    "townhall": create_app(build_runtime(town, load_plugins()))}
            lifespans = [await _lifespan(app) for app in apps.values()]
            requests = args.requests if args.agents <= 10 else max(20, args.requests // 50)
            await _measure(apps, routes, requests, args.rounds, args.profile, args.http)
            for task, inbox in lifespans:
                await inbox.put({"type": "lifespan.shutdown"})
                await task

        try:
            run_in_loop(run(), http=args.http)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
