"""``tt mcp``: a real process speaking MCP on stdin/stdout, driven by the SDK's stdio client."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from townhall_mcp.testing import stdio_session, structured, tool_error


async def test_stdio_lists_and_calls(town_dir: Path, sync_redis: redis.Redis, town_name: str) -> None:
    async with stdio_session(town_dir) as session:
        assert "assign_task" in {t.name for t in (await session.list_tools()).tools}
        assert "tinytown://town" in {str(r.uri) for r in (await session.list_resources()).resources}
        assert [p.name for p in (await session.list_prompts()).prompts] == ["plan_work"]

        assert structured(await session.call_tool("status", {}))["name"] == town_name
        # The local user holds every scope: agent.manage and town.write alike.
        agent = structured(await session.call_tool("spawn_agent", {"name": "erin"}))
        assigned = structured(await session.call_tool("assign_task", {"agent": "erin", "task": "triage"}))
        assert [a["name"] for a in structured(await session.call_tool("list_agents", {}))["agents"]] == ["erin"]
        assert "task" in tool_error(await session.call_tool("assign_task", {"agent": "erin"}))
        town = json.loads((await session.read_resource("tinytown://town")).contents[0].text)
        assert town["agents"][0]["inbox_len"] == 1

    assert sync_redis.hget(f"tt:{town_name}:task:{assigned['task_id']}", "description") == "triage"
    assert sync_redis.llen(f"tt:{town_name}:inbox:{agent['id']}") == 1
