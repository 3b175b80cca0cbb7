"""A scaler that plays KEDA on one machine, as docs/autoscaling.md describes it.

Once a second it reads ``GET /api/scaling`` and starts pool workers — the replica command of the docs,
``townhall --town DIR worker`` — until as many run as ``desired_agents`` asks for (never more than
``max_agents``). It never stops one: an idle worker exits 0 by itself after ``idle_timeout_secs``, as a
``ScaledJob`` replica does, and a lost one (killed, its host gone) is replaced because townhall stops
counting it once its heartbeat lapses. A 503 (Redis unreachable) changes nothing.

    python -m bench.autoscaler --townhall http://127.0.0.1:8080 --town DIR [--until-zero]

The reliability test ``tests/reliability/test_autoscaler_loop.py`` drives it against real processes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

#: The replica command of docs/autoscaling.md; ``{town}`` is the town directory.
WORKER_COMMAND = ["townhall", "--town", "{town}", "worker"]


class Autoscaler:
    """Starts ``command`` processes toward the town's ``desired_agents``; :meth:`tick` is one poll."""

    def __init__(self, townhall_url: str, command: list[str], *, log: IO[bytes] | None = None) -> None:
        self.url = townhall_url.rstrip("/")
        self.command = command
        self.log = log
        self.running: list[subprocess.Popen[bytes]] = []
        #: Exit status of every worker that has ended, in the order they were noticed.
        self.exits: list[int] = []
        self.started = 0
        self.most = 0

    def tick(self) -> dict[str, Any] | None:
        """Reap ended workers, read the signal, start the missing workers; the signal (``None`` when
        townhall could not answer)."""
        for proc in [p for p in self.running if p.poll() is not None]:
            self.running.remove(proc)
            self.exits.append(proc.returncode)
        try:
            signal = httpx.get(f"{self.url}/api/scaling", timeout=5).raise_for_status().json()
        except httpx.HTTPError:
            return None  # unknown: keep what runs
        target = min(signal["desired_agents"], signal["max_agents"])
        for _ in range(target - len(self.running)):
            self.running.append(subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self.log,
                                                 stderr=subprocess.STDOUT))
            self.started += 1
        self.most = max(self.most, len(self.running))
        return signal

    def wait_all(self, timeout: float) -> None:
        """Wait for every running worker to end by itself (idle timeout)."""
        deadline = time.monotonic() + timeout
        for proc in self.running:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            self.exits.append(proc.returncode)
        self.running.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--townhall", default="http://127.0.0.1:8080", help="townhall's base URL")
    parser.add_argument("--town", type=Path, default=Path("."), help="the town directory of the workers")
    parser.add_argument("--period", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--until-zero", action="store_true",
                        help="stop once the signal says scale_to_zero and every worker has exited")
    args = parser.parse_args(argv)
    command = [part.replace("{town}", str(args.town.absolute())) for part in WORKER_COMMAND]
    scaler = Autoscaler(args.townhall, command)
    while True:
        signal = scaler.tick()
        if signal is not None:
            print(f"desired {signal['desired_agents']:>3}  running {len(scaler.running):>3}  "
                  f"pending {signal['pending_tasks']:>4}  {signal['scaling_recommendation']}", flush=True)
            if args.until_zero and signal["scaling_recommendation"] == "scale_to_zero" and not scaler.running:
                return 0
        time.sleep(args.period)


if __name__ == "__main__":
    sys.exit(main())
