"""Schemathesis against a live townhall, every route of the exported OpenAPI document (docs/reliability.md).

No 5xx, every response (status, content type, body) as the document declares it, schema-valid input
accepted and schema-invalid input refused. The town is seeded so that parameters often name real
agents, tasks and missions; destructive routes (prune, delete, kill) run like every other one.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import msgspec
import yaml

from tests.reliability.conftest import LONG, bounded
from townhall.domain import (
    SUPERVISOR_ID,
    Agent,
    AgentState,
    Message,
    Mission,
    MissionState,
    Task,
    TaskBody,
    TaskState,
)
from townhall.store import AgentPatch
from townhall.testing.process import BIN, TownhallProcess
from townhall.testing.seed import TownSeed, wait_reconciled
from townhall.testing.towns import write_town

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "townhall-v1.yaml"

#: Every schemathesis check (no 5xx, status codes, content types, response bodies and headers as
#: declared, schema-valid input accepted and invalid input refused, Allow headers, use after delete,
#: missing required headers, ...) except ``ignored_auth``: this town runs in auth mode ``none``, where
#: accepting any credentials is the documented behaviour (the auth tests cover the other modes).
CHECKS = "all"
EXCLUDED_CHECKS = "ignored_auth"
#: Test cases per operation in the fuzzing phase (the coverage and stateful phases add their own). The
#: bounded form is sized for CI's 20-minute budget (with 200 it took over four minutes on a slow machine).
EXAMPLES = int(os.environ.get("TOWNHALL_FUZZ_EXAMPLES") or bounded(100, 500))
LONG_FORM_MIN_CASES = 10_000
#: Seconds per request; an event stream (open until the client leaves) is read this long per case.
REQUEST_TIMEOUT, STREAM_TIMEOUT = 10.0, 0.5
STREAM_EXAMPLES = 20


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def fuzz_config(agents: list[str], tasks: list[str], missions: list[str]) -> str:
    """Half of the generated references name seeded records, so the fuzzer gets past the 404s.

    ``cli`` is bound to real presets: which preset names exist depends on the town's configuration,
    which a town-independent document cannot list (an unknown preset is a 422 by design, covered by
    tests/test_api_validation.py)."""
    bind = {
        "path.agent": "agents", "body.agent": "agents", "body.to": "agents", "body.from": "agents",
        "path.task_id": "tasks", "path.mission_id": "missions",
    }
    # Set here rather than on the command line, which would override the per-operation settings: an
    # event stream never ends by itself (a heartbeat comment keeps it open), so each of its cases waits
    # out the request timeout; it gets a short one and fewer cases (tests/test_events_http.py covers it).
    lines = [f"request-timeout = {REQUEST_TIMEOUT}", f"generation.max-examples = {EXAMPLES}", "",
             "[[operations]]", 'include-path = "/v1/events"', f"request-timeout = {STREAM_TIMEOUT}",
             f"generation.max-examples = {STREAM_EXAMPLES}", "", "[parameters]"]
    lines += [f'"{key}" = {{ dictionary = "{name}", probability = 0.5 }}' for key, name in bind.items()]
    lines.append('"body.cli" = { dictionary = "clis" }')
    for name, values in (("agents", agents), ("tasks", tasks), ("missions", missions),
                         ("clis", ["claude", "codex", "aider"])):
        lines += ["", f"[dictionaries.{name}]", f"values = {_toml_list(values)}"]
    return "\n".join(lines) + "\n"


class SeededTown:
    """The seeded records, kept in existence while the fuzzer runs: prune, delete and orphan cleanup
    remove them early, and a fuzzer that only ever meets unknown ids learns little. Gone records are
    written again under the same ids (names and ids in the fuzzer's dictionaries stay valid)."""

    def __init__(self, redis, town: str) -> None:
        self.seed = TownSeed(redis, town)
        self.store = self.seed.store
        self.agents: list[Agent] = []
        self.tasks: list[Task] = []
        self.backlog: set[str] = set()
        self.missions: list[Mission] = []

    async def create(self) -> None:
        s = self.seed
        idle = await s.agent("fuzz-a", AgentState.IDLE)
        busy = await s.agent("fuzz-b", AgentState.WORKING, idle_for=timedelta(hours=2))
        stopped = await s.agent("fuzz-c", AgentState.STOPPED)
        broken = await s.agent("fuzz-d", AgentState.ERROR)
        self.agents = [idle, busy, stopped, broken]
        queued = [await s.backlog_task(f"backlog {i}") for i in range(3)]
        self.backlog = {t.id for t in queued}
        assigned = [await s.assigned_task(a, f"assigned to {a.name}") for a in (idle, busy, stopped)]
        running = await s.task(TaskState.RUNNING, "running work", assigned_to=busy.id)
        await self.store.agents.update(busy.id, AgentPatch(current_task=running.id))
        await self.store.agents.add_activity(busy.id, "working on the running task")
        orphan = await s.task(TaskState.ASSIGNED, "orphaned work", assigned_to=broken.id)
        done = await s.task(TaskState.COMPLETED, "finished work", assigned_to=busy.id)
        self.tasks = [*queued, *assigned, running, orphan, done]
        await self.store.messages.send(Message.new(SUPERVISOR_ID, stopped.id, TaskBody(description="dead letter")))
        self.missions = [await s.active_mission() for _ in range(2)]

    def dictionaries(self) -> tuple[list[str], list[str], list[str]]:
        agents = [v for a in self.agents for v in (a.name, a.id)]
        return agents, [t.id for t in self.tasks], [m.id for m in self.missions]

    async def replenish(self) -> None:
        """Gone agents come back; backlog tasks return to the backlog (pending) once claimed or
        deleted, other tasks once deleted; missions come back running once finished or deleted."""
        for agent in self.agents:
            if await self.store.agents.get(agent.id) is None:
                await self.store.agents.create(msgspec.structs.replace(agent))
        queued = set(await self.store.backlog.list())
        for task in self.tasks:
            if task.id in self.backlog and task.id not in queued:
                await self.store.tasks.save(msgspec.structs.replace(task))
                await self.store.backlog.push(task.id)
            elif await self.store.tasks.get(task.id) is None:
                await self.store.tasks.save(msgspec.structs.replace(task))
        for mission in self.missions:
            current = await self.store.missions.get(mission.id)
            if current is None or current.state is not MissionState.RUNNING:
                await self.store.missions.save(msgspec.structs.replace(mission))
                await self.store.missions.add_active(mission.id)

    async def keep(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.replenish()
            try:
                await asyncio.wait_for(stop.wait(), 0.2)
            except TimeoutError:
                pass


def _generated_cases(output: str) -> int:
    m = re.search(r"(\d+) generated", output)
    return int(m.group(1)) if m else 0


async def test_fuzz_every_route(tmp_path: Path, town_name: str, redis_url: str, aredis) -> None:
    town = tmp_path / "town"
    town.mkdir()
    write_town(town, town_name, redis_url=redis_url)
    proc = TownhallProcess(town).start()
    try:
        async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
            live = (await http.get("/schema/openapi.json")).json()
        assert live == yaml.safe_load(DOCUMENT.read_text(encoding="utf-8")), (
            "the served OpenAPI document differs from docs/openapi/townhall-v1.yaml"
        )
        await wait_reconciled(aredis, town_name)
        seeded = SeededTown(aredis, town_name)
        await seeded.create()
        config = tmp_path / "schemathesis.toml"
        config.write_text(fuzz_config(*seeded.dictionaries()), encoding="utf-8")
        args = [
            str(BIN / "schemathesis"), "--config-file", str(config), "--no-color", "run", str(DOCUMENT),
            "--url", proc.url, "--checks", CHECKS, "--exclude-checks", EXCLUDED_CHECKS,
            # One worker: with two, Hypothesis parses lambda sources in two threads at once, which trips
            # a CPython 3.11 race in ast.parse ("AST constructor recursion depth mismatch").
            "--workers", "1", "--continue-on-failure", "--generation-database", "none",
            # Hypothesis' data-generation health checks, not API checks: on a shared, busy machine
            # generating patterned strings can be slow, which says nothing about townhall.
            "--suppress-health-check", "too_slow,filter_too_much",
            *os.environ.get("TOWNHALL_FUZZ_ARGS", "").split(),
        ]
        if seed_value := os.environ.get("TOWNHALL_FUZZ_SEED"):
            args += ["--seed", seed_value]
        stop = asyncio.Event()
        keeper = asyncio.create_task(seeded.keep(stop))
        try:
            result = await asyncio.to_thread(
                subprocess.run, args, cwd=tmp_path, capture_output=True, text=True, timeout=bounded(600, 7200),
            )
        finally:
            stop.set()
            await keeper
        output = result.stdout + result.stderr
        (tmp_path / "schemathesis.log").write_text(output, encoding="utf-8")
        assert result.returncode == 0, output[-20000:]
        operations = sum(len(item) for item in live["paths"].values())
        assert f"Tested: {operations}" in output, output[-3000:]
        if LONG:
            assert _generated_cases(output) >= LONG_FORM_MIN_CASES, output[-3000:]
    finally:
        proc.stop()
