"""The streamable-HTTP transport of a real townhall process, driven by the SDK's own client."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import redis

from townhall.auth import Scope
from townhall.testing.towns import read_audit
from townhall_auth_apikey.testing import api_keys_toml, make_key
from townhall_mcp.testing import http_session, structured, tool_error

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": {"name": "test", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def task_keys(sync_redis: redis.Redis, town: str) -> list[str]:
    return sorted(sync_redis.scan_iter(f"tt:{town}:task:*"))


async def test_lists_and_calls_with_the_sdk_client(serve, sync_redis: redis.Redis, town_name: str) -> None:
    proc = serve()
    async with http_session(f"{proc.url}/mcp") as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert {"status", "list_agents", "spawn_agent", "kill_agent", "restart_agent", "assign_task", "get_task",
                "list_backlog", "add_backlog", "claim_backlog", "send_message", "read_inbox", "recover", "reclaim",
                "scaling_signal"} <= set(tools)
        assert tools["assign_task"].input_schema["required"] == ["agent", "task"]
        assert tools["status"].annotations.read_only_hint is True
        resources = {str(r.uri) for r in (await session.list_resources()).resources}
        assert resources == {"tinytown://town", "tinytown://agents", "tinytown://backlog"}
        templates = {t.uri_template for t in (await session.list_resource_templates()).resource_templates}
        assert templates == {"tinytown://agents/{name}", "tinytown://tasks/{task_id}"}
        assert [p.name for p in (await session.list_prompts()).prompts] == ["plan_work"]

        status = structured(await session.call_tool("status", {"deep": True}))
        assert status["name"] == town_name and status["agents"] == []

        spawned = structured(await session.call_tool("spawn_agent", {"name": "alice"}))
        assigned = structured(await session.call_tool("assign_task", {"agent": "alice", "task": "write the docs"}))
        assert assigned["agent_id"] == spawned["id"] and assigned["agent_name"] == "alice"

        agents = structured(await session.call_tool("list_agents", {}))
        assert [a["name"] for a in agents["agents"]] == ["alice"] and agents["count"] == 1

        task = json.loads((await session.read_resource(f"tinytown://tasks/{assigned['task_id']}")).contents[0].text)
        assert task["description"] == "write the docs" and task["assigned_to"] == spawned["id"]
        plan = await session.get_prompt("plan_work", {"goal": "ship 1.0"})
        assert "ship 1.0" in plan.messages[0].content.text and "alice" in plan.messages[0].content.text
        # The kinds of POST /v1/messages/send, the worker's control messages included.
        asked = structured(await session.call_tool("send_message", {"to": "alice", "message": "report",
                                                                     "kind": "status_request"}))

    # The Redis effect: the task record and the assignment in alice's inbox.
    record = sync_redis.hgetall(f"tt:{town_name}:task:{assigned['task_id']}")
    assert record["description"] == "write the docs" and record["assigned_to"] == spawned["id"]
    inbox = sync_redis.lrange(f"tt:{town_name}:inbox:{spawned['id']}", 0, -1)
    assert len(inbox) == 2 and assigned["task_id"] in inbox[0]
    assert json.loads(inbox[1])["id"] == asked["message_id"] and json.loads(inbox[1])["type"] == "status_request"


async def test_bad_arguments_name_the_argument_and_write_nothing(serve, sync_redis: redis.Redis,
                                                                   town_name: str) -> None:
    proc = serve()
    async with http_session(f"{proc.url}/mcp") as session:
        structured(await session.call_tool("spawn_agent", {"name": "bob"}))
        before = task_keys(sync_redis, town_name)

        assert "task" in tool_error(await session.call_tool("assign_task", {"agent": "bob"}))
        assert "task" in tool_error(await session.call_tool("assign_task", {"agent": "bob", "task": 7}))
        assert "tags" in tool_error(await session.call_tool("add_backlog", {"description": "x", "tags": "a"}))
        assert "task_id" in tool_error(await session.call_tool("get_task", {"task_id": "not-a-uuid"}))
        assert "name" in tool_error(await session.call_tool("spawn_agent", {"name": "supervisor"}))
        assert "cli" in tool_error(await session.call_tool("spawn_agent", {"name": "carol", "cli": "nope"}))
        assert "Agent not found: nobody" in tool_error(
            await session.call_tool("assign_task", {"agent": "nobody", "task": "x"}))

        assert task_keys(sync_redis, town_name) == before
        assert sync_redis.llen(f"tt:{town_name}:backlog") == 0
        assert [a["name"] for a in structured(await session.call_tool("list_agents", {}))["agents"]] == ["bob"]


async def test_api_key_mode(serve, sync_redis: redis.Redis, town_name: str, tmp_path: Path) -> None:
    reader, writer = make_key("reader", Scope.TOWN_READ), make_key("writer", Scope.TOWN_WRITE)
    manager = make_key("manager", Scope.AGENT_MANAGE)
    proc = serve(api_keys_toml([reader, writer, manager])
                 + '[townhall.audit]\nfile = "audit.jsonl"\n[townhall.rate_limit]\nenabled = false\n')

    # No key, a wrong key: refused at the HTTP layer, exactly as REST refuses.
    for headers, error in (({}, None), ({"Authorization": "Bearer " + "f" * 64}, "invalid_token")):
        response = httpx.post(f"{proc.url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"].startswith('Bearer realm="townhall"')
        assert error is None or f'error="{error}"' in response.headers["www-authenticate"]
        assert response.json()["status"] == 401 and response.json()["instance"] == "/mcp"

    async with http_session(f"{proc.url}/mcp", manager.bearer()) as session:
        agent = structured(await session.call_tool("spawn_agent", {"name": "dana"}))
        assert structured(await session.call_tool("kill_agent", {"agent": "dana"}))["status"] == "stopped"
        assert structured(await session.call_tool("restart_agent", {"agent": "dana"}))["status"] == "restarted"
        assert "town.write" in tool_error(await session.call_tool("assign_task", {"agent": "dana", "task": "x"}))

    before = task_keys(sync_redis, town_name)
    async with http_session(f"{proc.url}/mcp", reader.bearer()) as session:
        assert structured(await session.call_tool("status", {}))["agent_count"] == 1
        refused = tool_error(await session.call_tool("assign_task", {"agent": "dana", "task": "x"}))
        assert "town.write" in refused
        assert json.loads((await session.read_resource("tinytown://agents")).contents[0].text)["agents"]
    assert task_keys(sync_redis, town_name) == before
    assert sync_redis.llen(f"tt:{town_name}:inbox:{agent['id']}") == 0

    async with http_session(f"{proc.url}/mcp", writer.bearer()) as session:
        structured(await session.call_tool("assign_task", {"agent": "dana", "task": "x"}))
        assert "agent.manage" in tool_error(await session.call_tool("kill_agent", {"agent": "dana"}))
        # A key without town.read cannot read the town through resources either.
        with pytest.raises(Exception, match="town.read"):
            await session.read_resource("tinytown://town")

    audit = [line for line in read_audit(tmp_path / "audit.jsonl") if line["method"] == "MCP"]
    outcomes = [(line["principal"], line["path"], line["outcome"]) for line in audit]
    assert ("reader", "/mcp#tool:assign_task", "denied") in outcomes
    assert ("writer", "/mcp#tool:kill_agent", "denied") in outcomes
    assert ("writer", "/mcp#tool:assign_task", "success") in outcomes
    assert ("manager", "/mcp#tool:spawn_agent", "success") in outcomes
    assert not any(line["path"] == "/mcp#tool:status" for line in audit)  # reads that pass are not audited
    denied = next(line for line in audit if line["outcome"] == "denied")
    assert denied["status"] == 403 and denied["request_id"]
    text = json.dumps(read_audit(tmp_path / "audit.jsonl"))
    assert all(k.key not in text for k in (reader, writer, manager))


async def test_disabled_or_moved(serve) -> None:
    proc = serve('[townhall.mcp]\npath = "/agents-mcp"\n')
    # Stateless transport: POST only (a GET event stream would have nothing to carry).
    refused = httpx.get(f"{proc.url}/agents-mcp", headers={"Accept": "text/event-stream"}, timeout=5)
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    async with http_session(f"{proc.url}/agents-mcp") as session:
        assert structured(await session.call_tool("list_agents", {}))["count"] == 0
    assert httpx.post(f"{proc.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS).status_code == 404
    proc.stop()
    proc = serve("[townhall.mcp]\nenabled = false\n")
    assert httpx.post(f"{proc.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS).status_code == 404
