"""Worker test helpers: a fake agent CLI and running ``tt agent-loop`` processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import redis

from townhall.domain import Agent, Task
from townhall.keys import TownKeys
from townhall.queues import task_assign_message
from townhall.store.codec import task_to_hash
from townhall.store.json_codec import encode_message
from townhall.testing.towns import write_town

# The fake CLI: records each execution as "<task-id or ->\t<agent id>" in $MARKER (one O_APPEND write),
# sleeps when the prompt says SLEEP=<secs> (SLEEP_ONCE=<secs>: on its first run of the task only),
# fails with exit 3 when it says FAIL, prints its environment when it says PRINTENV. Presets of broken
# agents set FAKE_FAIL (every run fails at once, nothing recorded) or FAKE_HANG (a prompt saying MAYHANG
# hangs on its first run by such an agent).
FAKE_CLI = r'''
import os, re, sys, time
prompt = sys.stdin.read()
m = re.search(r"Task ([0-9a-f-]{36}):", prompt)
task = m.group(1) if m else "-"
if os.environ.get("FAKE_FAIL"):
    print("flaky agent fails", file=sys.stderr)
    sys.exit(5)
if os.environ.get("FAKE_HANG") and "MAYHANG" in prompt and not os.path.exists(os.environ["MARKER"] + ".hung." + task):
    open(os.environ["MARKER"] + ".hung." + task, "w").close()
    time.sleep(600)
s = re.search(r"SLEEP=([0-9.]+)", prompt)
if s:
    time.sleep(float(s.group(1)))
once = re.search(r"SLEEP_ONCE=([0-9.]+)", prompt)
if once and not os.path.exists(os.environ["MARKER"] + ".slept." + task):
    open(os.environ["MARKER"] + ".slept." + task, "w").close()
    time.sleep(float(once.group(1)))
if "PRINTENV" in prompt:
    for key, value in sorted(os.environ.items()):
        print(f"{key}={value}")
fd = os.open(os.environ["MARKER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, f"{task}\t{os.environ['TINYTOWN_AGENT_ID']}\n".encode())
os.close(fd)
print(f"did {task}")
if "FAIL" in prompt:
    print("boom", file=sys.stderr)
    sys.exit(3)
'''


def fake_town(root: Path, name: str, redis_url: str | None, *, streams: bool = False, idle_timeout: int = 0,
              heartbeat: int = 1, visibility: int = 3, launcher: str = "none", agent_extra: str = "",
              presets: str = "", stale_after: int | None = None, top: str = "") -> Path:
    """A town whose default preset ``fake`` runs :data:`FAKE_CLI`; ``agent_extra`` adds ``[agent]``
    lines, ``presets`` more tables; ``redis_url`` ``None``: the town's private Redis."""
    script = root / "fake_cli.py"
    script.write_text(FAKE_CLI, encoding="utf-8")
    marker = root / "executions.log"
    extra = "\n".join([
        *([top] if top else []),
        "default_cli = \"fake\"",
        *(["use_streams = true"] if streams else []),
        "[agent]",
        f"launcher = \"{launcher}\"",
        f"idle_timeout_secs = {idle_timeout}",
        f"heartbeat_secs = {heartbeat}",
        f"visibility_timeout_secs = {visibility}",
        agent_extra,
        *([f"stale_after_secs = {stale_after}"] if stale_after is not None else []),
        "[agent_clis.fake]",
        "name = \"fake\"",
        f"command = \"MARKER={marker} {sys.executable} {script}\"",
        presets,
    ])
    return write_town(root, name, redis_url=redis_url, extra=extra)


def executions(root: Path) -> list[tuple[str, str]]:
    path = root / "executions.log"
    if not path.exists():
        return []
    return [tuple(line.split("\t")) for line in path.read_text().splitlines() if line]  # type: ignore[misc]


_started: list[subprocess.Popen[bytes]] = []


def reap_workers() -> None:
    """Kill workers a test started and left running (a failed assertion must not leak processes)."""
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def start_worker(root: Path, name: str, agent_id: str | None = None, *extra: str,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-X", "faulthandler", "-m", "townhall.cli.tt_cmd", "--town", str(root), "agent-loop", name]
    if agent_id:
        args += ["--id", agent_id]
    log = (root / ".tt" / "logs" / f"test-{name}.log").open("ab")
    proc = subprocess.Popen([*args, *extra], stdout=log, stderr=subprocess.STDOUT, cwd=root,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    _started.append(proc)
    return proc


def start_pool_worker(root: Path, *extra: str, env: dict[str, str] | None = None,
                      program: str = "tt") -> subprocess.Popen[bytes]:
    """A pool worker (no NAME): ``tt agent-loop`` or ``townhall worker`` with ``extra`` arguments."""
    command = [sys.executable, "-X", "faulthandler", "-m", "townhall.cli.tt_cmd", "--town", str(root),
               "agent-loop"] if program == "tt" else [str(Path(sys.executable).parent / "townhall"), "--town",
                                                     str(root), "worker"]
    log = (root / ".tt" / "logs" / "test-pool.log").open("ab")
    proc = subprocess.Popen([*command, *extra], stdout=log,
                            stderr=subprocess.STDOUT, cwd=root,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    _started.append(proc)
    return proc


def wait_for(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def uuid_in(text: str) -> str | None:
    m = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)
    return m.group(0) if m else None


def agent_hash(r: redis.Redis, town: str, agent_id: str) -> dict[str, str]:
    return r.hgetall(TownKeys(town).agent(agent_id))


def seed_agent(r: redis.Redis, town: str, name: str, *, indexed: bool = True, **fields: str) -> str:
    """An agent record as the original ``tt`` writes it (``indexed``: also in townhall's index)."""
    agent = Agent.new(name, "fake")
    mapping = {"id": agent.id, "name": name, "cli": "fake", "agent_type": "worker", "state": "starting",
               "created_at": "2026-01-01T00:00:00+00:00", "last_heartbeat": "2026-01-01T00:00:00+00:00",
               "last_active_at": "2026-01-01T00:00:00+00:00", "tasks_completed": "0", "rounds_completed": "0",
               **fields}
    r.hset(TownKeys(town).agent(agent.id), mapping=mapping)
    if indexed:
        r.sadd(TownKeys(town).agent_index, agent.id)
    return agent.id


def assign_task(r: redis.Redis, keys: TownKeys, task: Task, agent_id: str, **fields: str) -> None:
    """The task record (plus extra hash ``fields``) and its ``task_assign`` in the agent's inbox."""
    r.hset(keys.task(task.id), mapping={**task_to_hash(task).set, **fields})
    r.rpush(keys.inbox(agent_id), encode_message(task_assign_message(task.id, agent_id)))
