"""Chaos with broken agents (issue 11): a healthy worker, one whose program is missing, one whose CLI
fails every run at once, one that hangs on some tasks; SIGKILLs and restarts meanwhile, and at the same
time reclaim to an agent, reclaim to the backlog, assign-all and the restarts sent over HTTP to a real
townhall process (``POST /v1/reclaim``, ``/v1/backlog/assign-all``, ``/v1/agents/{agent}/restart``); setup
and the final checks use the services and the store directly.
Every task must end ``completed`` by a healthy agent exactly once with its own output, except the tasks
built to fail, which end ``failed`` (after ``max_attempts`` runs unless assign-all made them direct
work); until then a task is queued exactly once; nothing stays open or taken."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from tests.support.workers import fake_town, start_worker
from townhall.config import load_town
from townhall.domain import DEAD_AGENT_STATES, TERMINAL_AGENT_STATES, Agent, AgentState, Task, TaskAssignBody, TaskState
from townhall.plugins import load_plugins
from townhall.runtime import build_services
from townhall.services.town import TownServices
from townhall.store.json_codec import try_decode_message
from townhall.testing.process import TownhallProcess

MAX_ATTEMPTS = 8
#: The detail of the 409 (``AgentDown``) that refuses work for a ``Stopped``/``Error`` agent.
AGENT_DOWN = re.compile(r"^agent 'broken' is (Stopped|Error) and takes no work until it is restarted")
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
                              api_calls: int = 12, deadline_secs: float = 120, seed: int = 11) -> None:
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
        elif kind < 0.4:
            all_ids.append((await services.tasks.assign("healthy", f"direct {i} SLEEP=0.05")).task.id)
            direct.add(all_ids[-1])
        elif kind < 0.5:  # stranded in the broken agent's mailbox until reclaim moves it
            all_ids.append((await services.tasks.assign("broken", f"stranded {i} SLEEP=0.05")).task.id)
        else:
            all_ids.append((await services.backlog.add(f"plain {i} SLEEP=0.05")).id)

    agents = {a.id: a for a in (healthy, hanger, flaky, broken)}
    townhall = TownhallProcess(root).start()
    try:
        async with httpx.AsyncClient(base_url=townhall.url, timeout=60) as http:
            procs, bulk, gone_on_their_own = await _chaos(
                services, http, root, agents, all_ids, rng, healthy=healthy, hanger=hanger, flaky=flaky,
                broken=broken, kills=kills, restarts=restarts, api_calls=api_calls, deadline_secs=deadline_secs,
                seed=seed)
    finally:
        try:
            townhall.stop(timeout=30)
        except subprocess.TimeoutExpired:
            assert townhall.process is not None
            townhall.process.kill()
            townhall.process.wait()
            raise

    # The broken agents end in Error (exit 4) unless their last life found no work to break on.
    for agent in (broken, flaky):
        if agent.id in gone_on_their_own:
            assert procs[agent.id].returncode == 4, agent.name
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
    # Shared work stays shared through kills (a leftover is retried too): every doomed task that
    # assign-all did not make direct work dead-letters after max_attempts.
    assert dead_letters >= len(doomed - bulk)
    good = len(all_ids) - len(doomed)
    assert await services.store.tasks.completed_total() == good  # each completed exactly once
    finals = await services.store.agents.get_many(list(agents))
    assert sum(a.tasks_completed for a in finals if a) == good
    if broken.id in gone_on_their_own:
        assert {a.id: a.state for a in finals if a}[broken.id] is AgentState.ERROR
    for agent_id in agents:
        assert await aredis.llen(keys.processing(agent_id)) == 0
        assert not await aredis.exists(keys.cli_group(agent_id))
    assert await services.store.backlog.length() == 0
    assert not await services.store.tasks.ids_in_state(TaskState.RUNNING)
    assert not await services.store.tasks.ids_in_state(TaskState.ASSIGNED)
    await _queued_exactly_once(services, all_ids, list(agents))
    if streams:
        assert await services.store.docket.pending_count() == 0


async def _chaos(services: TownServices, http: httpx.AsyncClient, root: Path, agents: dict[str, Agent],
                 all_ids: list[str], rng: random.Random, *, healthy: Agent, hanger: Agent, flaky: Agent,
                 broken: Agent, kills: int, restarts: int, api_calls: int, deadline_secs: float,
                 seed: int) -> tuple[dict[str, subprocess.Popen[bytes]], set[str], set[str]]:
    """Start the workers, run the kills, restarts and API calls at once, wait until every task ended (what
    is left in the dead agent's mailbox reclaimed over HTTP at the end), stop the workers. Returns the
    workers, the task ids assign-all moved, and the agents whose worker had stopped on its own."""
    procs: dict[str, subprocess.Popen[bytes]] = {a.id: start_worker(root, a.name, a.id) for a in agents.values()}
    deadline = time.monotonic() + deadline_secs
    bulk: set[str] = set()  # moved by assign-all: direct work from then on
    gone_on_their_own: set[str] = set()
    try:
        await asyncio.gather(
            _kills_and_restarts(services, http, rng, procs, root, agents, kills=kills, restarts=restarts,
                                victims=[healthy.id, hanger.id], broken=[broken, flaky]),
            _api_calls(http, random.Random(seed + 1), api_calls, bulk),
        )
        while time.monotonic() < deadline:
            records = await services.store.tasks.get_many(all_ids)
            waiting = [t for t in records if t is None or not t.state.is_terminal]
            if not waiting or await _only_stranded(services, procs, broken.id, waiting):
                break
            await asyncio.sleep(0.3)
        await _queued_exactly_once(services, all_ids, list(agents))
        if procs[broken.id].poll() is not None:  # no restart left: if it is dead, it must refuse work
            final = await services.store.agents.get(broken.id)
            if final is not None and final.state in DEAD_AGENT_STATES:
                await _refused_to_broken(http)
        if (await _reclaim(http, {"to": "healthy"}))["reclaimed"]:  # what is left with the dead agent
            while time.monotonic() < deadline:
                records = await services.store.tasks.get_many(all_ids)
                if all(t is not None and t.state.is_terminal for t in records):
                    break
                await asyncio.sleep(0.3)
        gone_on_their_own = {a for a, proc in procs.items() if proc.poll() is not None}
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
    return procs, bulk, gone_on_their_own


async def _restart(services: TownServices, http: httpx.AsyncClient, agent_id: str,
                   procs: dict[str, subprocess.Popen[bytes]], root: Path, name: str) -> None:
    """If the agent's worker has stopped in ``Error``: ``POST /v1/agents/{id}/restart`` (launcher ``none``:
    the record only) and a new worker, as an orchestrator would start it."""
    if procs[agent_id].poll() is None:
        return
    agent = await services.store.agents.get(agent_id)
    if agent is None or agent.state not in TERMINAL_AGENT_STATES:
        return
    answer = await http.post(f"/v1/agents/{agent_id}/restart")
    assert answer.status_code == 200, (answer.status_code, answer.text)
    assert answer.json()["status"] == "restarted" and answer.json()["agent_id"] == agent_id, answer.text
    procs[agent_id] = start_worker(root, name, agent_id)


async def _kills_and_restarts(services: TownServices, http: httpx.AsyncClient, rng: random.Random,
                              procs: dict[str, subprocess.Popen[bytes]], root: Path, agents: dict[str, Agent], *,
                              kills: int, restarts: int, victims: list[str], broken: list[Agent]) -> None:
    for step in range(kills + restarts):
        await asyncio.sleep(rng.uniform(0.4, 1.0))
        if step < restarts:  # a restart from the API clears Error; the agent breaks again
            for agent in broken:
                await _restart(services, http, agent.id, procs, root, agent.name)
            continue
        victim = rng.choice(victims)
        procs[victim].send_signal(signal.SIGKILL)
        await asyncio.to_thread(procs[victim].wait)
        procs[victim] = start_worker(root, agents[victim].name, victim)


async def _reclaim(http: httpx.AsyncClient, body: dict[str, object]) -> dict[str, object]:
    answer = await http.post("/v1/reclaim", json=body)
    assert answer.status_code == 200, (body, answer.status_code, answer.text)
    return answer.json()


async def _api_calls(http: httpx.AsyncClient, rng: random.Random, calls: int, bulk: set[str]) -> None:
    """Reclaim to a live agent, reclaim to the backlog and assign-all over HTTP, at random while workers
    crash; reclaim to the broken agent is refused whenever it is dead (409, AgentDown), as assign is."""
    for _ in range(calls):
        await asyncio.sleep(rng.uniform(0.2, 0.7))
        call = rng.choice(["to_healthy", "to_hanger", "to_backlog", "assign_all", "to_broken"])
        if call == "to_healthy":
            await _reclaim(http, {"to": "healthy"})
        elif call == "to_hanger":
            await _reclaim(http, {"to": "hanger"})
        elif call == "to_backlog":
            assert (await _reclaim(http, {"to_backlog": True}))["destination"] == "backlog"
        elif call == "assign_all":
            answer = await http.post("/v1/backlog/assign-all", json={"agent": "healthy"})
            assert answer.status_code == 200, (answer.status_code, answer.text)
            assigned = answer.json()
            assert assigned["assigned"] == len(assigned["tasks"]), assigned
            bulk.update(assigned["tasks"])
        else:  # accepted only while a restart has it up
            await _refused_to_broken(http, unless_up=True)


async def _refused_to_broken(http: httpx.AsyncClient, *, unless_up: bool = False) -> None:
    """``POST /v1/reclaim`` to the broken agent: 409 ``AgentDown`` as a problem (``unless_up``: or 200,
    when it is up at that moment)."""
    answer = await http.post("/v1/reclaim", json={"to": "broken"})
    if unless_up and answer.status_code == 200:
        return
    assert answer.status_code == 409, (answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    problem = answer.json()
    assert problem["type"] == "https://tinytown.dev/errors/409" and problem["title"] == "Conflict", problem
    assert problem["status"] == 409 and AGENT_DOWN.match(problem["detail"]), problem


async def _only_stranded(services: TownServices, procs: dict[str, subprocess.Popen[bytes]], broken_id: str,
                         waiting: list[Task | None]) -> bool:
    """Every open task is direct work of the broken agent while it is dead and its worker gone: it waits
    in that mailbox for a reclaim (no worker will take it)."""
    agent = await services.store.agents.get(broken_id)
    if agent is None or agent.state not in DEAD_AGENT_STATES or procs[broken_id].poll() is None:
        return False
    return all(t is not None and t.assigned_to == broken_id and t.state is TaskState.ASSIGNED for t in waiting)


async def _queued_exactly_once(services: TownServices, task_ids: list[str], agent_ids: list[str]) -> None:
    """A finished task is queued nowhere; an open one exactly once (the backlog, or one entry in one
    mailbox or processing list): none lost, none duplicated."""
    store = services.store
    where: Counter[str] = Counter(await store.backlog.list())
    for agent_id in agent_ids:
        raws = [e.raw for e in await store.messages.peek(agent_id, 10_000)]
        raws += [e.raw for e in await store.messages.peek(agent_id, 10_000, urgent=True)]
        raws += await store.processing.entries(agent_id)
        for raw in raws:
            message = try_decode_message(raw)
            if message is not None and isinstance(message.body, TaskAssignBody):
                where[message.body.task_id] += 1
    for task_id, record in zip(task_ids, await store.tasks.get_many(task_ids)):
        assert record is not None, task_id
        expected = 0 if record.state.is_terminal else 1
        assert where[task_id] == expected, (task_id, record.state, record.assigned_to, where[task_id])
