"""``tt up`` / ``tt down`` / ``tt ps`` and the private Redis's lifetime, with real processes (issue 12):
nothing is left running afterwards (checked by pid), no task is lost across down/up, and the private
server is stopped by the last of the town's processes, never under one that still uses it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import redis

from tests.support.workers import fake_town, start_pool_worker, wait_for
from townhall.config import load_town
from townhall.keys import TownKeys
from townhall.testing.process import BIN, TownhallProcess, free_port, run_cli
from townhall.testing.towns import append_config


@pytest.fixture
def town(tmp_path: Path, town_name: str) -> Iterator[Path]:
    """A town with no Redis configured (its private server on .tt/redis.sock) and the fake CLI."""
    fake_town(tmp_path, town_name, None)
    append_config(tmp_path, f"[townhall]\nrest_port = {free_port()}\n")
    yield tmp_path
    run_cli("--town", str(tmp_path), "down", program="tt")
    pid = redis_pid(tmp_path)
    if pid and alive(pid):
        os.kill(pid, signal.SIGKILL)


def tt(town: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_cli("--town", str(town), *args, program="tt", timeout=timeout)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def redis_pid(town: Path) -> int | None:
    path = town / ".tt" / "redis.pid"
    return int(path.read_text()) if path.exists() else None


def ps(town: Path) -> dict[str, int]:
    done = tt(town, "ps")
    assert done.returncode == 0, done.stderr
    if "nothing is running" in done.stdout:
        return {}
    return {name: int(pid) for name, pid in (line.split() for line in done.stdout.splitlines())}


def task_state(town: Path, task_id: str) -> str:
    """Through ``tt task show`` (which must not leave a server behind when the town is down)."""
    done = tt(town, "task", "show", task_id, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["state"]


def running_now(town: Path, task_ids: list[str]) -> int:
    """How many are running, read straight from the town's private server (connected only briefly:
    an open connection is a user that keeps the server up)."""
    client = redis.Redis(unix_socket_path=str(town / ".tt" / "redis.sock"), decode_responses=True)
    try:
        name = load_town(town).name
        return sum(client.hget(TownKeys(name).task(t), "state") == "running" for t in task_ids)
    finally:
        client.close()


def add(town: Path, description: str) -> str:
    done = tt(town, "backlog", "add", description, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["task_id"]


def test_short_commands_leave_no_server_behind(town: Path) -> None:
    add(town, "one")
    pid = redis_pid(town)
    assert pid is None or not alive(pid)
    assert tt(town, "backlog", "list").returncode == 0
    pid = redis_pid(town)
    assert pid is None or not alive(pid)


def test_up_detach_ps_down_up_again_loses_no_task(town: Path) -> None:
    # Long enough that neither worker finishes its first task and takes the third before `tt down`
    # reaches it, even on a slow, loaded machine (with 8 s, all three were once done by then).
    tasks = [add(town, f"job {i} SLEEP=20") for i in range(3)]
    up = tt(town, "up", "--detach", "--workers", "2")
    assert up.returncode == 0, up.stderr
    procs = ps(town)
    assert set(procs) == {"up", "townhall", "worker-1", "worker-2", "redis"}
    assert all(alive(pid) for pid in procs.values())
    wait_for(lambda: running_now(town, tasks) == 2, timeout=60)

    down = tt(town, "down")
    assert down.returncode == 0 and "is down" in down.stdout, down.stderr
    assert not any(alive(pid) for pid in procs.values())
    assert ps(town) == {}
    states = [task_state(town, t) for t in tasks]
    # Nothing running or lost: finished within the workers' grace, or handed back to the backlog.
    assert set(states) <= {"completed", "pending"} and "pending" in states
    assert not alive(redis_pid(town) or 0)

    assert tt(town, "up", "--detach", "--workers", "2").returncode == 0
    again = ps(town)
    wait_for(lambda: all(task_state(town, t) == "completed" for t in tasks), timeout=150)
    assert tt(town, "down").returncode == 0
    assert not any(alive(pid) for pid in again.values())


def test_foreground_up_stops_in_order_on_sigint(town: Path) -> None:
    proc = subprocess.Popen([str(BIN / "tt"), "--town", str(town), "up", "--workers", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "is up" in line:
            break
    procs = ps(town)
    # "is up" means up: townhall serves and the worker's agent is registered (both said READY=1).
    port = load_town(town).config.townhall.rest_port
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    agents = tt(town, "status", "--json")
    assert agents.returncode == 0 and len(json.loads(agents.stdout)["agents"]) == 1, agents.stdout
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0
    log = "".join(lines) + out
    assert log.index("worker-1 exited with status 0") < log.index("townhall exited with status 0") \
        < log.index("town is down")
    assert any(line.startswith("townhall   | ") for line in log.splitlines())
    assert not any(alive(pid) for pid in procs.values())


def test_a_process_that_exits_while_starting_is_named_instead_of_is_up(town: Path) -> None:
    port = load_town(town).config.townhall.rest_port
    with socket.socket() as taken:  # townhall cannot listen: it exits while starting
        taken.bind(("127.0.0.1", port))
        taken.listen()
        proc = subprocess.Popen([str(BIN / "tt"), "--town", str(town), "up", "--workers", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "is up" in line or "partly up" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    log = "".join(lines) + out
    assert "partly up: exited while starting: townhall;" in log, log
    assert "is up:" not in log
    assert "worker-1 exited with status 0\n" in log  # it was ready: no "before it was ready"
    assert proc.returncode == 0


def test_bad_input(town: Path) -> None:
    nothing = tt(town, "down")
    assert nothing.returncode == 0 and "nothing is running" in nothing.stdout
    too_many = tt(town, "up", "--workers", "11")
    assert too_many.returncode == 2 and "max_agents (10)" in too_many.stderr
    assert ps(town) == {}


def test_the_private_server_outlives_a_townhall_stopped_alone(town: Path) -> None:
    townhall = TownhallProcess(town).start()
    worker = start_pool_worker(town)
    wait_for(lambda: "worker started" in (town / ".tt" / "logs" / "test-pool.log").read_text()
             or "started, queue" in (town / ".tt" / "logs" / "test-pool.log").read_text())
    pid = redis_pid(town)
    assert pid and alive(pid)
    assert townhall.stop() == 0
    assert "left running" in townhall.output()
    assert alive(pid)  # the worker still uses it
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    wait_for(lambda: not alive(pid), timeout=10)


