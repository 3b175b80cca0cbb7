"""Broken agents are refused at spawn and restart (issue 11 item 2, spawn side): with the ``local``
launcher, a preset whose program is not on PATH is a 422 naming the preset and the program (REST and
``tt spawn``), and no record is created or changed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from tests.support.workers import fake_town, wait_for
from townhall.builtin.launcher_local import missing_program, preset_program
from townhall.config import AgentCliPreset
from townhall.keys import TownKeys
from townhall.testing.process import TownhallProcess, run_cli
from townhall.testing.towns import append_config

GHOST = "tinytown-no-such-agent-cli"


@pytest.fixture
def town(tmp_path: Path, town_name: str, redis_url: str) -> Path:
    fake_town(tmp_path, town_name, redis_url, launcher="local")
    append_config(tmp_path, f'\n[agent_clis.ghost]\nname = "ghost"\ncommand = "{GHOST} --print"\n')
    return tmp_path


def test_spawn_and_restart_refuse_a_preset_whose_program_is_missing(town: Path, town_name: str,
                                                                    sync_redis: redis.Redis) -> None:
    keys = TownKeys(town_name)
    proc = TownhallProcess(town).start()
    try:
        with httpx.Client(base_url=proc.url, timeout=20) as api:
            r = api.post("/v1/agents", json={"name": "g1", "cli": "ghost"})
            assert r.status_code == 422, r.text
            problem = r.json()
            assert f"CLI preset 'ghost' runs '{GHOST}', which is not found on PATH" in problem["detail"]
            assert [e["field"] for e in problem["errors"]] == ["cli"]
            assert [a["name"] for a in api.get("/v1/agents").json()["agents"]] == []  # no record left behind

            # A healthy preset spawns; once its preset breaks, restarting it is refused the same way.
            agent_id = api.post("/v1/agents", json={"name": "w1"}).json()["agent_id"]
            wait_for(lambda: sync_redis.hget(keys.agent(agent_id), "state") == "idle")
            assert api.post("/v1/agents/w1/kill").status_code == 200
            wait_for(lambda: not sync_redis.exists(keys.worker_alive(agent_id)))
            sync_redis.hset(keys.agent(agent_id), "cli", "ghost")
            r = api.post("/v1/agents/w1/restart")
            assert r.status_code == 422 and GHOST in r.json()["detail"], r.text
            assert sync_redis.hget(keys.agent(agent_id), "state") == "stopped"
            # ?start=true goes through the same restart.
            r = api.post("/v1/tasks/assign?start=true", json={"agent": "w1", "task": "x"})
            assert r.status_code == 422 and GHOST in r.json()["detail"], r.text
    finally:
        proc.stop()


def test_tt_spawn_refuses_a_missing_program(town: Path) -> None:
    done = run_cli("--town", str(town), "spawn", "g1", "--cli", "ghost", program="tt")
    assert done.returncode == 1
    assert f"CLI preset 'ghost' runs '{GHOST}', which is not found on PATH" in done.stderr


def test_the_program_of_a_preset_command(tmp_path: Path) -> None:
    assert preset_program("claude --print") == "claude"
    assert preset_program("MARKER=/tmp/x FOO='a b' /usr/bin/python3 script.py") == "/usr/bin/python3"
    assert preset_program("") is None
    tool = tmp_path / "bin" / "mytool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")

    def preset(command: str, **kw: object) -> AgentCliPreset:
        return AgentCliPreset(name="p", command=command, **kw)  # type: ignore[arg-type]

    assert missing_program(preset("bin/mytool"), tmp_path) == "bin/mytool"  # not executable
    tool.chmod(0o755)
    assert missing_program(preset("bin/mytool --x"), tmp_path) is None
    assert missing_program(preset("mytool"), tmp_path) == "mytool"
    assert missing_program(preset("mytool", env={"PATH": str(tool.parent)}), tmp_path) is None
    assert missing_program(preset("sh -c true"), tmp_path) is None
