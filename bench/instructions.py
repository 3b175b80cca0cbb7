"""Instructions per request of each app, counted by valgrind: ``python -m bench.instructions [--route "GET /health"] [--asgi]``.

A count that the machine's load does not move at all (the same code, inputs and environment give the
same count to a few hundred instructions in a few hundred thousand), for telling whether a change to
townhall's code made a request cheaper when timings on a shared machine cannot. Each app is run twice
under ``valgrind --tool=callgrind`` in a child process (Redis, a child of the child, is not counted),
once with 100 and once with 600 measured requests after a warm-up, and the difference divided by 500:
what startup costs cancels out. Requests go through uvicorn's HTTP protocol in-process as in
``python -m bench.cpu --http`` (``--asgi``: to the ASGI app directly). Needs Debian's ``valgrind``;
about two minutes per app and route, the two apps counted side by side. ``EXTRA`` is TOML added to
townhall's config, as for ``python -m bench.cpu``; both log as the server does (to ``/dev/null``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FEW, MANY = 100, 600


def _child(app_name: str, label: str, requests: int, http: bool) -> None:
    """In the child under valgrind: one app, ``requests`` requests to the route after 50 unmeasured."""
    from bench.baseline import build
    from bench.cpu import _asgi_call, _http_call, _lifespan, http_options, log_as_the_server, run_in_loop
    from bench.throughput import ROUTES, seed_many
    from townhall.app import create_app
    from townhall.config import load_town
    from townhall.plugins import load_plugins
    from townhall.runtime import build_runtime
    from townhall.testing.redis_server import RedisServer
    from townhall.testing.towns import write_town

    route = next(r for r in ROUTES if r.label.startswith(label))
    log_as_the_server()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "redis").mkdir()
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        try:
            town_dir = Path(tmp) / "town"
            town_dir.mkdir()
            write_town(town_dir, "bench", redis_url=server.url,
                       extra=os.environ.get("EXTRA", "") + "[agent]\nlauncher = \"none\"\nstale_after_secs = 86400\n")
            seed_many(server.url, "bench", 10)

            async def run() -> None:
                app = (build(server.url, "bench") if app_name == "baseline"
                       else create_app(build_runtime(load_town(town_dir), load_plugins())))
                task, inbox = await _lifespan(app)
                call = _http_call(app, route, **http_options(app_name, app)) if http else _asgi_call(app, route)
                for _ in range(50):
                    assert (await call()) < 300
                for _ in range(requests):
                    await call()
                await inbox.put({"type": "lifespan.shutdown"})
                await task

            run_in_loop(run(), http=http)
        finally:
            server.stop()


def _count(app_name: str, label: str, requests: int, http: bool) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m",
               "bench.instructions", "--child", app_name, "--route", label, "--requests", str(requests)]
    if not http:
        command.append("--asgi")
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
                          check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_request(app_name: str, label: str, http: bool) -> float:
    return (_count(app_name, label, MANY, http) - _count(app_name, label, FEW, http)) / (MANY - FEW)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--route", default="GET /health", help="a route label of the bench (its start)")
    parser.add_argument("--asgi", action="store_true", help="call the ASGI apps directly, no HTTP protocol")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.route, args.requests, not args.asgi)
        return
    with ThreadPoolExecutor(2) as pool:
        baseline, townhall = pool.map(lambda name: per_request(name, args.route, not args.asgi),
                                      ["baseline", "townhall"])
    print(f"{'route':32} {'baseline':>12} {'townhall':>12} {'ratio':>6}   (instructions per request)")
    print(f"{args.route:32} {baseline:12,.0f} {townhall:12,.0f} {baseline / townhall:6.3f}")


if __name__ == "__main__":
    main()
