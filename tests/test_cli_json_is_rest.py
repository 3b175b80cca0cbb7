"""Issue 17 item 4: ``tt … --json`` prints the REST body of the same thing. Each command runs against a
town, and the REST route of the same action runs against a twin of that town's state (or the same
state, for reads); the bodies must be equal once ids that differ by construction are set aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from townhall.domain import AgentState
from townhall.testing.inprocess import app_client
from townhall.testing.process import run_cli
from townhall.testing.seed import TownSeed
from townhall.testing.towns import write_town

#: Fields whose values are fresh ids or times per call (two spawns never share an id); their presence
#: and type still have to agree.
FRESH = {"task_id", "agent_id", "to_agent", "message_id", "id", "created_at", "updated_at", "started_at", "completed_at",
         "tasks", "summary"}  # a task assignment's summary names its task id


def tt(town: Path, *args: str) -> Any:
    result = run_cli("--town", str(town), *args, "--json", program="tt")
    assert result.returncode == 0, (args, result.stderr)
    return json.loads(result.stdout)


def same_body(cli: Any, rest: Any, where: str = "") -> None:
    assert type(cli) is type(rest), (where, cli, rest)
    if isinstance(cli, dict):
        assert sorted(cli) == sorted(rest), (where, sorted(cli), sorted(rest))
        for key in cli:
            if key in FRESH and isinstance(cli[key], (str, list, type(None))):
                assert type(cli[key]) is type(rest[key]) or None in (cli[key], rest[key]), (where, key)
            else:
                same_body(cli[key], rest[key], f"{where}.{key}")
    elif isinstance(cli, list):
        assert len(cli) == len(rest), (where, cli, rest)
        for i, (a, b) in enumerate(zip(cli, rest)):
            same_body(a, b, f"{where}[{i}]")
    else:
        assert cli == rest, (where, cli, rest)


async def test_every_json_output_is_the_rest_body(tmp_path: Path, town_name: str, redis_url: str,
                                                  seed: TownSeed) -> None:
    # No worker ever runs here (launcher none): liveness must not declare the agents lost meanwhile.
    town_dir = write_town(tmp_path, town_name, redis_url=redis_url,
                          extra='[agent]\nlauncher = "none"\nstale_after_secs = 3600\n')
    async with app_client(town_dir) as client:
        async def rest(method: str, path: str, body: Any = None) -> Any:
            response = await client.request(method, path, json=body)
            assert response.status_code < 300, (path, response.text)
            return response.json()

        # Mutations: the same action once through tt, once through REST (on a twin agent or task).
        same_body(tt(town_dir, "spawn", "cli-1", "--cli", "claude", "--nickname", "Piper"),
                  {**await rest("POST", "/v1/agents", {"name": "rest-1", "cli": "claude", "nickname": "Piper"}),
                   "name": "cli-1"})
        assign_cli = tt(town_dir, "assign", "cli-1", "fix [it]")
        same_body(assign_cli, {**await rest("POST", "/v1/tasks/assign", {"agent": "rest-1", "task": "fix [it]"}),
                               "agent_name": "cli-1"})
        same_body(tt(town_dir, "task", "show", assign_cli["task_id"]),
                  await rest("GET", f"/v1/tasks/{assign_cli['task_id']}"))
        same_body(tt(town_dir, "inbox", "cli-1"), {**await rest("GET", "/v1/agents/rest-1/inbox"), "agent": "cli-1"})
        same_body(tt(town_dir, "send", "cli-1", "hello", "--kind", "info", "--urgent"),
                  await rest("POST", "/v1/messages/send", {"to": "rest-1", "message": "hello", "kind": "info",
                                                          "urgent": True}))
        same_body(tt(town_dir, "backlog", "add", "write docs", "--tag", "docs"),
                  await rest("POST", "/v1/backlog", {"description": "write docs", "tags": ["docs"]}))
        same_body(tt(town_dir, "backlog", "list"), await rest("GET", "/v1/backlog"))
        backlog = (await rest("GET", "/v1/backlog"))["backlog"]
        same_body(tt(town_dir, "backlog", "claim", backlog[0]["task_id"], "cli-1"),
                  {**await rest("POST", f"/v1/backlog/{backlog[1]['task_id']}/claim", {"agent": "rest-1"}),
                   "agent_name": "cli-1"})
        for description in ("a", "b"):
            await seed.backlog_task(description)
        cli_all = tt(town_dir, "backlog", "assign-all", "cli-1")
        assert cli_all["assigned"] == 2
        await seed.backlog_task("c")
        await seed.backlog_task("d")
        same_body(cli_all, await rest("POST", "/v1/backlog/assign-all", {"agent": "rest-1"}))
        one, two = await seed.backlog_task("x"), await seed.backlog_task("y")
        same_body(tt(town_dir, "backlog", "remove", one.id), await rest("DELETE", f"/v1/backlog/{two.id}"))
        same_body(tt(town_dir, "task", "complete", assign_cli["task_id"], "--result", "done"),
                  await rest("POST", f"/v1/tasks/{assign_cli['task_id']}/complete", {"result": "done"}))

        # Cancel and retry (h13c's task actions): twin tasks with the same text, one per side.
        cancel_cli, cancel_rest = await seed.backlog_task("cancel me"), await seed.backlog_task("cancel me")
        cancelled_cli = tt(town_dir, "task", "cancel", cancel_cli.id[:8])  # tt takes the short id back
        cancelled_rest = await rest("POST", f"/v1/tasks/{cancel_rest.id}/cancel")
        assert cancelled_cli["state"] == cancelled_rest["state"] == "cancelled"
        # result says who cancelled it: the caller differs by construction (tt has none, REST a principal).
        assert cancelled_cli["result"].startswith("Cancelled") and cancelled_rest["result"].startswith("Cancelled")
        same_body({**cancelled_cli, "result": None}, {**cancelled_rest, "result": None})
        same_body(tt(town_dir, "task", "retry", cancel_cli.id), await rest("POST", f"/v1/tasks/{cancel_rest.id}/retry"))

        # Reads of the same state.
        assert tt(town_dir, "tasks") == await rest("GET", "/v1/tasks")
        assert tt(town_dir, "tasks", "--state", "Pending, completed", "--limit", "2") == \
            await rest("GET", "/v1/tasks?state=pending,completed&limit=2")
        same_body(tt(town_dir, "status"), await rest("GET", "/v1/status"))
        same_body(tt(town_dir, "status", "--deep"), await rest("GET", "/v1/status?deep=true"))

        same_body(tt(town_dir, "kill", "cli-1"), {**await rest("POST", "/v1/agents/rest-1/kill"), "agent": "cli-1"})
        same_body(tt(town_dir, "restart", "cli-1"),
                  {**await rest("POST", "/v1/agents/rest-1/restart"), "agent": "cli-1"})
        same_body(tt(town_dir, "recover"), await rest("POST", "/v1/recover"))
        same_body(tt(town_dir, "reclaim"), await rest("POST", "/v1/reclaim", {}))
        await seed.agent("dead-1", AgentState.STOPPED)
        await seed.agent("dead-2", AgentState.STOPPED)
        cli_prune = tt(town_dir, "prune")
        assert sorted(cli_prune["agents"]) == ["dead-1", "dead-2"]
        await seed.agent("dead-1", AgentState.STOPPED)
        await seed.agent("dead-2", AgentState.STOPPED)
        rest_prune = await rest("POST", "/v1/agents/prune", {})
        same_body({**cli_prune, "agents": sorted(cli_prune["agents"])},
                  {**rest_prune, "agents": sorted(rest_prune["agents"])})
