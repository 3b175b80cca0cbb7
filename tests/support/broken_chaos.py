"""Chaos with broken agents (issue 11): a healthy worker, one whose program is missing, one whose CLI
fails every run at once, one that hangs on some tasks; SIGKILLs and restarts meanwhile. Every task must
end ``completed`` by a healthy agent exactly once with its own output, except the tasks built to fail,
which end ``failed`` after ``max_attempts`` runs; nothing stays open or taken."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

from tests.support.workers import fake_town, start_worker
from townhall.config import load_town
from townhall.domain import TERMINAL_AGENT_STATES, AgentState, TaskState
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.services.town import TownServices

MAX_ATTEMPTS = 8
PRESETS = "\n".join([
    '[agent_clis.missing]', 'name = "missing"', 'command = "definitely-not-installed-tt-cli --print"',
])


def _broken_presets(root: Path) -> str:
    """Presets for the failing and the hanging agent: the fake CLI with FAKE_FAIL / FAKE_HANG."""
    marker, script = root / "executions.log", root / "fake_cli.py"
    lines = []
    for name, flag in (("flaky", "FAKE_FAIL"), ("hanger", "FAKE_HANG")):
        lines += [f"[agent_clis.{name}]", f'name = "{name}"',
                  f'command = "MARKER={marker} {sys.executable} {script}"', f'env = {{ {flag} = "1" }}']
    return "\n".join([PRESETS, *lines])


async def broken_agents_chaos(root: Path, town_name: str, redis_url: str, aredis: aioredis.Redis, *,
                              streams: bool, tasks: int = 60, kills: int = 6, restarts: int = 2,
                              deadline_secs: float = 120, seed: int = 11) -> None:
    fake_town(root, town_name, redis_url, streams=streams, heartbeat=1, visibility=3,
              agent_extra="\n".join([f"max_attempts = {MAX_ATTEMPTS}", "task_timeout_secs = 3",
                                     "failure_breaker = { failures = 3, within_secs = 60 }"]),
              presets=_broken_presets(root))
    services = build_services(load_town(root), aredis, load_plugins().registry)
    healthy = await services.agents.spawn("healthy", cli="fake", launch=False)
    hanger = await services.agents.spawn("hanger", cli="hanger", launch=False)
    flaky = await services.agents.spawn("flaky", cli="flaky", launch=False)
    broken = await services.agents.spawn("broken", cli="missing", launch=False)
    rng = random.Random(seed)
    doomed: set[str] = set()
    direct: set[str] = set()
    all_ids: list[str] = []
    for i in range(tasks):
        kind = rng.random()
        if kind < 0.1:
            all_ids.append((await services.backlog.add(f"doomed {i} FAIL")).id)
            doomed.add(all_ids[-1])
        elif kind < 0.3:
            all_ids.append((await services.backlog.add(f"slow {i} MAYHANG SLEEP=0.05")).id)
        elif kind < 0.45:
            all_ids.append((await services.tasks.assign("healthy", f"direct {i} SLEEP=0.05")).task.id)
            direct.add(all_ids[-1])
        else:
            all_ids.append((await services.backlog.add(f"plain {i} SLEEP=0.05")).id)

    agents = {a.id: a for a in (healthy, hanger, flaky, broken)}
    procs: dict[str, subprocess.Popen[bytes]] = {a.id: start_worker(root, a.name, a.id) for a in agents.values()}
    deadline = time.monotonic() + deadline_secs
    try:
        for step in range(kills + restarts):
            await asyncio.sleep(rng.uniform(0.4, 1.0))
            if step < restarts:  # a restart from the API clears Error; the agent breaks again
                for agent in (broken, flaky):
                    await _restart(services, agent.id, procs, root, agent.name)
                continue
            victim = rng.choice([healthy.id, hanger.id])
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            procs[victim] = start_worker(root, agents[victim].name, victim)
        while time.monotonic() < deadline:
            records = await services.store.tasks.get_many(all_ids)
            if all(t is not None and t.state.is_terminal for t in records):
                break
            await asyncio.sleep(0.3)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise

    assert procs[broken.id].returncode == 4 and procs[flaky.id].returncode == 4
    keys = services.store.keys
    dead_letters = 0
    for task_id in all_ids:
        record = await aredis.hgetall(keys.task(task_id))
        if task_id in doomed:
            assert record["state"] == "failed" and "exit status 3" in record["result"], (task_id, record)
            if record["result"].startswith("failed after"):
                assert record["attempts"] == str(MAX_ATTEMPTS) and json.loads(record["attempt_errors"]), record
                dead_letters += 1
        else:
            assert record["state"] == "completed", (task_id, record)
            assert record["result"].strip() == f"did {task_id}", record  # its own output only
            assert record["assigned_to"] in (healthy.id, hanger.id), record
    # A shared task whose worker was SIGKILLed comes back to that worker as a leftover (lists mode),
    # which no longer knows it was shared work: it fails at its next failed run, without retries.
    assert dead_letters >= len(doomed) - (0 if streams else kills)
    good = len(all_ids) - len(doomed)
    assert await services.store.tasks.completed_total() == good  # each completed exactly once
    finals = await services.store.agents.get_many(list(agents))
    assert sum(a.tasks_completed for a in finals if a) == good
    assert {a.id: a.state for a in finals if a}[broken.id] is AgentState.ERROR
    for agent_id in agents:
        assert await aredis.llen(keys.processing(agent_id)) == 0
        assert not await aredis.exists(keys.cli_group(agent_id))
    assert await services.store.backlog.length() == 0
    assert not await services.store.tasks.ids_in_state(TaskState.RUNNING)
    if streams:
        assert await services.store.docket.pending_count() == 0


async def _restart(services: TownServices, agent_id: str, procs: dict[str, subprocess.Popen[bytes]], root: Path,
                   name: str) -> None:
    """If the agent's worker has stopped in ``Error``: ``restart`` (launcher ``none``: the record only)
    and a new worker, as an orchestrator would start it."""
    if procs[agent_id].poll() is None:
        return
    agent = await services.store.agents.get(agent_id)
    if agent is None or agent.state not in TERMINAL_AGENT_STATES:
        return
    await services.lifecycle.restart(agent_id)
    procs[agent_id] = start_worker(root, name, agent_id)
