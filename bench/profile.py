"""Where does a route's time go? ``python -m bench.profile [--route "GET /health"] [--seconds 10]``

Starts a private Redis and one townhall process (the bench's town: 10 agents, 20 backlog tasks), puts
the bench's load on one route and samples the server with ``py-spy`` (``pip install py-spy``; needs
ptrace rights, e.g. root). Writes ``docs/profile/<route>.svg`` (a flame graph) and
``docs/profile/<route>.txt`` (the top frames by own and total time), and prints the text summary.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.load import LoadSpec, run_load
from bench.throughput import LOAD_CPU, ROUTES, pin, seed_town
from townhall.testing.process import TownhallProcess
from townhall.testing.redis_server import RedisServer
from townhall.testing.towns import write_town

OUT = Path(__file__).resolve().parent.parent / "docs" / "profile"


def _package(frame: str) -> str:
    """Whose code a frame is: ``name (path:line)`` as :func:`summarize` shortens it."""
    path = frame.rpartition(" (")[2]
    top = path.split("/", 1)[0]
    if top.startswith("townhall"):
        return "townhall (core and plugins)"
    if "/" in path and not path.startswith(("asyncio/", "selectors", "<")):
        return top
    return "asyncio, the standard library and the interpreter"


def summarize(collapsed: Path, top: int = 30) -> str:
    """Own and total sample shares per frame from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = [re.sub(r" \(/.*?/site-packages/", " (", f) for f in stack.split(";")]
        frames = [re.sub(r" \(/work/[^)]*?/townhall/", " (townhall/", f) for f in frames]
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    packages: collections.Counter[str] = collections.Counter()
    for frame, n in own.items():
        packages[_package(frame)] += n
    lines = [f"{samples} samples", "", "own %   package"]
    lines += [f"{100 * n / samples:5.1f}   {name}" for name, n in packages.most_common()]
    lines += ["", "own %   frame"]
    lines += [f"{100 * n / samples:5.1f}   {f}" for f, n in own.most_common(top)]
    lines += ["", "total % frame"]
    lines += [f"{100 * n / samples:5.1f}   {f}" for f, n in total.most_common(top)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--route", default="GET /health", help="a route label of bench/throughput.py")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    route = next(r for r in ROUTES if r.label.startswith(args.route))
    py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if py_spy is None:
        raise SystemExit("py-spy not found: pip install py-spy")
    root = Path(tempfile.mkdtemp(prefix="townhall-profile-"))
    (root / "redis").mkdir()
    (root / "town").mkdir()
    server = RedisServer(root / "redis")
    server.start()
    try:
        assert server.process is not None
        pin(server.process.pid)
        write_town(root / "town", "bench", redis_url=server.url)
        townhall = TownhallProcess(root / "town").start()
        try:
            assert townhall.process is not None
            pin(townhall.process.pid)
            seed_town(townhall.url)
            slug = re.sub(r"[^a-z0-9]+", "-", route.label.lower()).strip("-")
            args.out.mkdir(parents=True, exist_ok=True)
            collapsed = root / "stacks.txt"
            svg = args.out / f"{slug}.svg"
            # Two recordings under one load: py-spy writes either a flame graph or raw stacks per run.
            spec = LoadSpec(host="127.0.0.1", port=townhall.port, method=route.method, path=route.path,
                            body=route.body, connections=args.connections, duration=2 * args.seconds + 3,
                            warmup=0.5, cpu=LOAD_CPU)
            load = mp.get_context("spawn").Process(target=run_load, args=(spec,))
            load.start()
            time.sleep(1.0)
            for fmt, path in (("flamegraph", svg), ("raw", collapsed)):
                subprocess.run([py_spy, "record", "--pid", str(townhall.process.pid), "--duration",
                                str(int(args.seconds)), "--rate", "250", "--format", fmt, "--output",
                                str(path), "--nonblocking"], check=True, capture_output=True)
            load.join()
            text = summarize(collapsed)
            (args.out / f"{slug}.txt").write_text(f"py-spy, {route.label}, {args.connections} connections\n\n{text}")
            print(text)
            print(f"wrote {svg} and {args.out / f'{slug}.txt'}")
        finally:
            townhall.stop()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
