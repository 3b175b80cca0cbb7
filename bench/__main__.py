"""``python -m bench``: every benchmark in one run, one table, and ``bench/results/latest.json``.

Starts its own Redis and townhall processes; needs nothing but the installed project. Sections:
townhall vs a bare Litestar+uvicorn baseline, api_key vs no auth, cost of a long history, and
assign → worker-start latency in both queue modes, a new valid API key during a wrong-key flood, two server
processes against one (throughput, one shared rate limit), what ``wait_replicas = 1`` costs a write,
and publish → received latency with 200 live-event subscribers. ``--quick`` shortens everything (a smoke
run).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

from bench.report import Row, print_table, write_json
from townhall.testing.redis_server import RedisServer

RESULTS = Path(__file__).parent / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test, noisy figures)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per load round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", default="throughput,history,dispatch,auth_flood,scaling,replication,events",
                        help="comma list of sections: throughput, history, dispatch, auth_flood, scaling, "
                             "replication, events")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",")}
    # Five shorter rounds rather than three long ones: the ratios are medians of pairs (bench/throughput.py).
    duration = args.duration or (1.5 if args.quick else 3.0)
    rounds = 1 if args.quick else 5

    root = Path(tempfile.mkdtemp(prefix="townhall-bench-"))
    rows: list[Row] = []
    if "throughput" in sections:
        from bench import throughput
        from townhall_auth_apikey.generate import generate_api_key

        (root / "redis").mkdir()
        server = RedisServer(root / "redis")
        server.start()
        try:
            assert server.process is not None
            throughput.pin(server.process.pid)
            generated = generate_api_key()
            rows += throughput.run(root, server.url, duration=duration, connections=args.connections,
                                   rounds=rounds, api_key=(generated.key, generated.hash))
        finally:
            server.stop()
    for name, module in (("history", "bench.history_cost"), ("dispatch", "bench.dispatch_latency"),
                         ("auth_flood", "bench.auth_flood"), ("scaling", "bench.scaling_out"),
                         ("replication", "bench.wait_replicas"), ("events", "bench.events_fanout")):
        if name in sections:
            try:
                section = importlib.import_module(module)
            except ModuleNotFoundError:
                print(f"(section {name}: {module} not available)", file=sys.stderr)
                continue
            rows += section.rows(quick=args.quick)
    print_table(rows)
    write_json(rows, args.json)
    print(f"\nJSON: {args.json}")
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
