"""Chaos with broken agents (issue 11): a healthy worker, one whose program is missing, one whose CLI
fails every run at once, one that hangs on some tasks; SIGKILLs and restarts meanwhile, and at the same
time reclaim to an agent, reclaim to the backlog, assign-all and the restarts sent over HTTP to a real
townhall process (``POST /v1/reclaim``, ``/v1/backlog/assign-all``, ``/v1/agents/{agent}/restart``); setup
and the final checks use the services and the store directly.

The chaos overlaps live workers (a worker process takes seconds to start on a loaded machine): it
starts once every worker has registered and taken work, and each step waits for what it needs, watched
in Redis (:mod:`tests.support.live_workers`): a kill for a worker that is up and preferably running a
task, a restart for a broken agent whose worker died on its own, an API call for a worker that is up.
Half the tasks are fed while the kills go on, so that work lasts as long as the chaos. What the chaos
did is counted (:class:`Tally`, also written to ``chaos-tally.json``) and each kind of event must have
happened at least once.
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
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from tests.support.live_workers import EXIT_BROKEN, LiveWorkers
from tests.support.workers import fake_town
from townhall.config import load_town
from townhall.domain import Agent, AgentState, Task, TaskAssignBody, TaskState
from townhall.plugins import load_plugins
from townhall.problem_types import type_uri
from townhall.runtime import build_services
from townhall.services.town import TownServices
from townhall.store.json_codec import try_decode_message
from townhall.testing.process import TownhallProcess
from townhall.waits import event_within

MAX_ATTEMPTS = 8
#: The detail of the 409 (``AgentDown``) that refuses work for a ``Stopped``/``Error`` agent.
AGENT_DOWN = re.compile(r"^agent 'broken' is (Stopped|Error) and takes no work until it is restarted")
PRESETS = "\n".join([
    '[agent_clis.missing]', 'name = "missing"', 'command = "definitely-not-installed-tt-cli --print"',
])
#: A kill waits this long for a worker running a task, then takes any worker that is up.
PREFER_RUNNING_SECS = 5.0
#: A step fails the test when what it waits for (a worker up, a restarted one registered) takes longer.
UP_WAIT_SECS = 60.0
#: A task's run is killed at most this often (every killed run of shared work counts as an attempt).
KILLS_PER_TASK = 2
#: A restart waits this long for the broken agent's worker to die on its own (it needs work to break on).
DEATH_WAIT_SECS = 30.0
API_CALLS = ("to_healthy", "to_hanger", "to_backlog", "assign_all", "to_broken")


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
    work = _Work(services, random.Random(seed), tasks, batches=kills)
    await work.add(tasks - work.batch * kills, stranded=True)
    all_ids, doomed = work.ids, work.doomed

    agents = {a.id: a for a in (healthy, hanger, flaky, broken)}
    workers = LiveWorkers(services, root, agents, all_ids, stranded_with=broken.id)
    tally = Tally()
    townhall = TownhallProcess(root).start()
    try:
        async with httpx.AsyncClient(base_url=townhall.url, timeout=60) as http:
            run = _Run(workers, tally, http, asyncio.Lock(), broken.id, [healthy.id, hanger.id])
            bulk, gone_on_their_own = await _chaos(
                services, run, work, broken=broken, flaky=flaky, kills=kills, restarts=restarts,
                api_calls=api_calls, deadline_secs=deadline_secs, seed=seed)
    finally:
        try:
            townhall.stop(timeout=30)
        except subprocess.TimeoutExpired:
            assert townhall.process is not None
            townhall.process.kill()
            townhall.process.wait()
            raise
    tally.worker_starts = workers.starts
    (root / "chaos-tally.json").write_text(json.dumps(asdict(tally)), encoding="utf-8")
    print(f"broken-agents chaos ({'streams' if streams else 'lists'}): {asdict(tally)}")

    # The broken agents end in Error (exit 4) unless their last life found no work to break on.
    procs = workers.procs
    for agent in (broken, flaky):
        if agent.id in gone_on_their_own:
            assert procs[agent.id].returncode == EXIT_BROKEN, agent.name
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
    tally.check()  # and it all happened while workers were up


@dataclass
class Tally:
    """What the chaos did, counted as it happened."""

    up_after_secs: float = 0.0  # from starting the workers until every one had registered and taken work
    chaos_secs: float = 0.0  # the kills, restarts and API calls, from then on
    tasks: int = 0
    worker_starts: int = 0
    kills: int = 0  # SIGKILLs, each of a worker that was up (registered, holding its liveness key)
    kills_mid_task: int = 0  # ... of a worker running a task's CLI (the task still running after the kill)
    restarts: int = 0  # POST /v1/agents/{id}/restart → 200 for a dead agent whose worker had exited
    api_calls: int = 0  # reclaims, assign-alls and restarts over HTTP during the chaos
    api_calls_live: int = 0  # reclaims and assign-alls made while a healthy or hanging worker was up
    reclaims_to_agent: int = 0  # live ones only, as the next two
    reclaims_to_backlog: int = 0
    assign_alls: int = 0
    reclaimed: int = 0  # units of work the live reclaims moved
    assigned_in_bulk: int = 0  # tasks the live assign-alls moved
    refused_to_broken: int = 0  # reclaims to the broken agent while it was dead (worker gone): 409
    accepted_to_broken: int = 0  # ... while a restart had it up: 200

    def check(self) -> None:
        """The chaos overlapped live workers: each kind of event happened at least once."""
        facts = asdict(self)
        assert self.restarts >= 1, facts
        assert self.kills_mid_task >= 1, facts
        assert self.reclaims_to_agent >= 1 and self.reclaims_to_backlog >= 1 and self.assign_alls >= 1, facts
        assert self.refused_to_broken >= 1, facts


@dataclass
class _Run:
    """What the steps of the chaos share."""

    workers: LiveWorkers
    tally: Tally
    http: httpx.AsyncClient
    #: Held by a restart of the broken agent and by a reclaim to it that expects its 409.
    broken_lock: asyncio.Lock
    broken_id: str
    #: The healthy and the hanging agent: killed and restarted at random; "up" means one of them is.
    live: list[str]


async def _chaos(services: TownServices, run: _Run, work: _Work, *, broken: Agent, flaky: Agent, kills: int,
                 restarts: int, api_calls: int, deadline_secs: float, seed: int) -> tuple[set[str], set[str]]:
    """Start the workers and wait until every one has registered and taken work; then run the kills, the
    restarts and the API calls at once, each paced by what the workers do; wait until every task ended
    (what is left in the dead agent's mailbox reclaimed over HTTP at the end), stop the workers. Returns
    the task ids assign-all moved, and the agents whose worker had stopped on its own."""
    workers, tally = run.workers, run.tally
    for agent_id in workers.agents:
        workers.start(agent_id)
    deadline = time.monotonic() + deadline_secs
    bulk: set[str] = set()  # moved by assign-all: direct work from then on
    try:
        await workers.until_all_take_work(deadline)
        tally.up_after_secs = round(time.monotonic() - workers.started_at, 1)
        chaos_from = time.monotonic()
        done = asyncio.Event()  # the kills and the API calls are over: no more restarts
        async with asyncio.TaskGroup() as chaos:  # one step failing cancels the others
            for i, agent in enumerate((broken, flaky)):
                chaos.create_task(_restarts(run, random.Random(seed + 2 + i), agent, restarts, done))
            async with asyncio.TaskGroup() as steps:
                steps.create_task(_kills(run, work, random.Random(seed + 4), kills))
                steps.create_task(_api_calls(run, random.Random(seed + 1), api_calls, bulk))
            done.set()
        tally.chaos_secs = round(time.monotonic() - chaos_from, 1)
        tally.tasks = len(work.ids)
        all_ids = work.ids
        while time.monotonic() < deadline:
            records = await services.store.tasks.get_many(all_ids)
            waiting = [t for t in records if t is None or not t.state.is_terminal]
            if not waiting or await _only_stranded(services, workers, broken.id, waiting):
                break
            await asyncio.sleep(0.3)
        await _queued_exactly_once(services, all_ids, list(workers.agents))
        if await workers.dead(broken.id):  # no restart left: dead, it must refuse work
            _check_refused(await run.http.post("/v1/reclaim", json={"to": "broken"}))
        if (await _reclaim(run.http, {"to": "healthy"}))["reclaimed"]:  # what is left with the dead agent
            while time.monotonic() < deadline:
                records = await services.store.tasks.get_many(all_ids)
                if all(t is not None and t.state.is_terminal for t in records):
                    break
                await asyncio.sleep(0.3)
        gone_on_their_own = {a for a in workers.agents if workers.gone(a)}
    finally:
        workers.stop_all()
    return bulk, gone_on_their_own


class _Work:
    """The tasks, of random kinds: some before the workers start, the rest fed in ``batches`` while the
    kills go on (after each one, and whenever the workers ran out of work), so that work lasts as long as
    the chaos. Only the first ones are stranded with the broken agent (later it is dead, and refuses)."""

    def __init__(self, services: TownServices, rng: random.Random, total: int, *, batches: int) -> None:
        self.services, self.rng, self.total = services, rng, total
        self.batch = total // 2 // max(batches, 1)
        self.ids: list[str] = []
        self.doomed: set[str] = set()

    async def add(self, count: int, *, stranded: bool = False) -> int:
        """Add up to ``count`` of the tasks still to come; how many."""
        count = min(count, self.total - len(self.ids))
        for _ in range(count):
            i, kind = len(self.ids), self.rng.random()
            if kind < 0.1:
                self.ids.append((await self.services.backlog.add(f"doomed {i} FAIL")).id)
                self.doomed.add(self.ids[-1])
            elif kind < 0.3:
                self.ids.append((await self.services.backlog.add(f"slow {i} MAYHANG SLEEP=0.05")).id)
            elif kind < 0.4:
                self.ids.append((await self.services.tasks.assign("healthy", f"direct {i} SLEEP=0.05")).task.id)
            elif kind < 0.5 and stranded:  # stranded in the broken agent's mailbox until reclaim moves it
                self.ids.append((await self.services.tasks.assign("broken", f"stranded {i} SLEEP=0.05")).task.id)
            else:
                self.ids.append((await self.services.backlog.add(f"plain {i} SLEEP=0.05")).id)
        return count

    async def feed(self) -> bool:
        """The next batch; ``False`` when none is left."""
        return await self.add(self.batch) > 0

    async def rest(self) -> None:
        await self.add(self.total)


async def _kills(run: _Run, work: _Work, rng: random.Random, kills: int) -> None:
    """SIGKILL a worker that has been up for a moment (one running a task when there is one) and start
    its successor, as an orchestrator would, and feed the next batch of work; ``kills`` times. Then the
    rest of the work."""
    workers, tally = run.workers, run.tally
    killed_in: Counter[str] = Counter()
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        victim, task_id = await _victim(run, work, rng, killed_in, min_up=rng.uniform(0.3, 2.0))
        proc = workers.procs[victim]
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        tally.kills += 1
        if task_id is not None:
            killed_in[task_id] += 1
            task = await workers.store.tasks.get(task_id)
            if task is not None and task.state is TaskState.RUNNING and task.assigned_to == victim:
                tally.kills_mid_task += 1
        workers.start(victim)
        await work.feed()
    await work.rest()


async def _victim(run: _Run, work: _Work, rng: random.Random, killed_in: Counter[str], *,
                  min_up: float) -> tuple[str, str | None]:
    """A worker up for ``min_up`` seconds to kill and the task it runs: one running a task not killed
    :data:`KILLS_PER_TASK` times yet, if one does within :data:`PREFER_RUNNING_SECS` (the next batch
    of work is fed if the workers ran out), else any (at once when no work is left to come)."""
    workers = run.workers
    since = time.monotonic()
    while True:
        left = await workers.work_left() or await work.feed()
        ready = [v for v in run.live if await workers.up_for(v) >= min_up]
        running = [(v, task) for v in ready
                   if (task := await workers.running(v)) is not None and killed_in[task] < KILLS_PER_TASK]
        if running:
            return rng.choice(running)
        waited = time.monotonic() - since
        if ready and (waited > PREFER_RUNNING_SECS or not left):
            return rng.choice(ready), None
        assert waited < UP_WAIT_SECS, "no worker came up to be killed"
        await asyncio.sleep(0.05)


async def _restarts(run: _Run, rng: random.Random, agent: Agent, restarts: int, done: asyncio.Event) -> None:
    """Once the broken ``agent``'s worker has exited on its own with the agent ``Error``/``Stopped``,
    and a moment later (reclaims see it dead meanwhile): ``POST /v1/agents/{id}/restart`` (launcher
    ``none``: the record only) and a new worker, as an orchestrator would start it; then wait until that
    one has registered before the next. ``restarts`` times, until the kills and API calls are over.
    Before a restart of the broken agent, a reclaim to it is refused (409): it is dead."""
    workers, tally = run.workers, run.tally
    lock = run.broken_lock if agent.id == run.broken_id else asyncio.Lock()
    for _ in range(restarts):
        since = time.monotonic()
        while not await workers.dead(agent.id):
            if done.is_set() or time.monotonic() - since > DEATH_WAIT_SECS:
                return
            await asyncio.sleep(0.05)
        if await event_within(done, rng.uniform(0.3, 1.5)):
            return
        async with lock:
            assert await workers.dead(agent.id)
            if agent.id == run.broken_id:  # dead, so refused: reclaim never strands work with it
                tally.api_calls += 1
                await _to_broken(run, locked=True)
            tally.api_calls += 1
            answer = await run.http.post(f"/v1/agents/{agent.id}/restart")
            assert answer.status_code == 200, (answer.status_code, answer.text)
            assert answer.json()["status"] == "restarted" and answer.json()["agent_id"] == agent.id, answer.text
            tally.restarts += 1
            workers.start(agent.id)
        await workers.until(f"restarted {agent.name} registered",
                            lambda: workers.registered(agent.id, took_work=False), UP_WAIT_SECS)


async def _reclaim(http: httpx.AsyncClient, body: dict[str, object]) -> dict[str, object]:
    answer = await http.post("/v1/reclaim", json=body)
    assert answer.status_code == 200, (body, answer.status_code, answer.text)
    return answer.json()


async def _api_calls(run: _Run, rng: random.Random, calls: int, bulk: set[str]) -> None:
    """Reclaim to a live agent, reclaim to the backlog, assign-all and reclaim to the broken agent over
    HTTP, each kind at least once, in random order while workers crash; each call waits until a worker
    of the live agents is up, and a kind none of whose calls found one up before and after it (a kill
    meanwhile) is called again. Reclaim to the broken agent is refused whenever it is dead (409,
    AgentDown), as assign is."""
    schedule = [*API_CALLS, *rng.choices(API_CALLS, k=max(calls - len(API_CALLS), 0))]
    rng.shuffle(schedule)
    owed = set(API_CALLS) - {"to_broken"}
    for call in schedule:
        await asyncio.sleep(rng.uniform(0.2, 1.0))
        if await _api_call(run, call, bulk):
            owed.discard(call)
    for _ in range(10):
        for call in sorted(owed):
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            if await _api_call(run, call, bulk):
                owed.discard(call)


async def _api_call(run: _Run, call: str, bulk: set[str]) -> bool:
    """One call of :func:`_api_calls`, once a worker is up; whether one was up before and after it."""
    workers, tally, http = run.workers, run.tally, run.http
    await workers.until("a worker up for the API calls", lambda: workers.any_up(run.live), UP_WAIT_SECS)
    tally.api_calls += 1
    if call == "to_broken":
        await _to_broken(run)
        return False
    if call in ("to_healthy", "to_hanger", "to_backlog"):
        body: dict[str, object] = {"to_backlog": True} if call == "to_backlog" else {"to": call.removeprefix("to_")}
        report = await _reclaim(http, body)
        assert call != "to_backlog" or report["destination"] == "backlog", report
        moved = int(report["reclaimed"])  # type: ignore[call-overload]
    else:
        answer = await http.post("/v1/backlog/assign-all", json={"agent": "healthy"})
        assert answer.status_code == 200, (answer.status_code, answer.text)
        assigned = answer.json()
        assert assigned["assigned"] == len(assigned["tasks"]), assigned
        bulk.update(assigned["tasks"])
        moved = len(assigned["tasks"])
    if not await workers.any_up(run.live):  # up before and after the call: during it
        return False
    tally.api_calls_live += 1
    if call == "assign_all":
        tally.assign_alls += 1
        tally.assigned_in_bulk += moved
    else:
        tally.reclaimed += moved
        if call == "to_backlog":
            tally.reclaims_to_backlog += 1
        else:
            tally.reclaims_to_agent += 1
    return True


async def _to_broken(run: _Run, *, locked: bool = False) -> None:
    """Reclaim to the broken agent: refused (409) when it is dead, which no restart changes meanwhile
    (the broken lock; ``locked``: already held); 200 or 409 when a restart has it up (its worker may be
    breaking as we ask)."""
    if not locked:
        async with run.broken_lock:
            return await _to_broken(run, locked=True)
    dead = await run.workers.dead(run.broken_id)
    answer = await run.http.post("/v1/reclaim", json={"to": "broken"})
    if not dead and answer.status_code == 200:
        run.tally.accepted_to_broken += 1
        return
    _check_refused(answer)
    if dead:
        run.tally.refused_to_broken += 1


def _check_refused(answer: httpx.Response) -> None:
    """The answer to ``POST /v1/reclaim`` to the dead broken agent: 409 ``AgentDown`` as a problem."""
    assert answer.status_code == 409, (answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    problem = answer.json()
    assert problem["type"] == type_uri(409) and problem["title"] == "Conflict", problem
    assert problem["status"] == 409 and AGENT_DOWN.match(problem["detail"]), problem


async def _only_stranded(services: TownServices, workers: LiveWorkers, broken_id: str,
                         waiting: list[Task | None]) -> bool:
    """Every open task is direct work of the broken agent while it is dead and its worker gone: it waits
    in that mailbox for a reclaim (no worker will take it)."""
    if not await workers.dead(broken_id):
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
