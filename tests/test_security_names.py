"""Issue 14 item 7 against a real townhall process: an agent name read from Redis that breaks the name
rule never becomes a path or a worker's argument (restart and recover refuse the record and log it)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from townhall.domain import AgentState
from townhall.domain.agents import is_safe_agent_name
from townhall.testing.process import TownhallProcess
from townhall.testing.seed import TownSeed
from townhall.testing.towns import write_town


@pytest.mark.parametrize("name", ["ok", "agent-1", "a.b_c", "x" * 64])
def test_names_that_keep_the_rule(name: str) -> None:
    assert is_safe_agent_name(name)


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "-rf", "a\nb", "x" * 65, "é", "a b"])
def test_names_that_break_the_rule(name: str) -> None:
    assert not is_safe_agent_name(name)


async def test_restart_refuses_a_record_whose_name_is_a_path(tmp_path: Path, town_name: str, redis_url: str,
                                                             seed: TownSeed) -> None:
    town = tmp_path / "town"
    town.mkdir()
    write_town(town, town_name, redis_url=redis_url, launcher="local",
               extra='[agent_clis.test-cli]\nname = "test-cli"\ncommand = "true"\n')  # the seeded preset
    escape = f"sec-escape-{uuid.uuid4().hex[:8]}"
    # Written by another tool with Redis access: three levels up from .tt/logs is outside the town.
    agent = await seed.agent(f"../../../{escape}", AgentState.STOPPED)
    proc = TownhallProcess(town).start()
    try:
        async with httpx.AsyncClient(base_url=proc.url, timeout=20) as client:
            refused = await client.post(f"/v1/agents/{agent.id}/restart")
            assert refused.status_code == 409, refused.text
            assert "breaks the agent name rule" in refused.json()["detail"]
            listed = (await client.get("/v1/agents")).json()
            assert [a["state"] for a in listed["agents"] if a["id"] == agent.id] == ["Error"], listed
            assert (await client.post("/v1/recover")).status_code == 200
    finally:
        proc.stop()
    assert not (tmp_path / f"{escape}.log").exists()
    assert not list(tmp_path.rglob(f"{escape}*"))
    assert "breaks the agent name rule" in proc.output()
