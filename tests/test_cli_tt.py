"""The ``tt`` commands against a real Redis, through the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from tests.support.workers import fake_town
from townhall.keys import TownKeys
from townhall.testing.process import free_port, run_cli


def tt(town: Path, *args: str) -> dict | list:  # type: ignore[type-arg]
    result = run_cli("--town", str(town), *args, "--json", program="tt")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_backlog_assign_send_inbox_task_and_prune(tmp_path: Path, town_name: str, redis_url: str,
                                                  sync_redis: redis.Redis) -> None:
    fake_town(tmp_path, town_name, redis_url)
    agent = tt(tmp_path, "spawn", "w1")
    assert agent["name"] == "w1" and agent["state"] == "Starting"

    added = tt(tmp_path, "backlog", "add", "write docs", "--tag", "docs")
    listed = tt(tmp_path, "backlog", "list")
    assert listed["count"] == 1 and listed["backlog"][0]["task_id"] == added["task_id"]
    claimed = tt(tmp_path, "backlog", "claim", added["task_id"], "w1")
    assert claimed["agent_name"] == "w1"
    assert tt(tmp_path, "backlog", "list")["count"] == 0

    assigned = tt(tmp_path, "assign", "w1", "fix bug")
    sent = tt(tmp_path, "send", "w1", "fyi", "--kind", "info", "--urgent")
    assert sent["urgent"] is True
    view = tt(tmp_path, "inbox", "w1")
    assert view["total"] == 2 and view["urgent"] == 1

    done = tt(tmp_path, "task", "complete", assigned["task_id"], "--result", "fixed")
    assert done["state"] == "completed" and done["result"] == "fixed"
    assert tt(tmp_path, "task", "show", assigned["task_id"])["state"] == "completed"

    status = tt(tmp_path, "status")
    assert [a["name"] for a in status["agents"]] == ["w1"]
    assert tt(tmp_path, "kill", "w1")["status"] == "stopped"
    assert tt(tmp_path, "reclaim")["reclaimed"] >= 1
    assert tt(tmp_path, "prune")["agents"] == ["w1"]
    assert sync_redis.scard(TownKeys(town_name).agent_index) == 0


def test_refusals_exit_1_with_a_message(tmp_path: Path, town_name: str, redis_url: str) -> None:
    fake_town(tmp_path, town_name, redis_url)
    result = run_cli("--town", str(tmp_path), "assign", "nobody", "x", program="tt")
    assert result.returncode == 1 and "nobody" in result.stderr
    human = run_cli("--town", str(tmp_path), "status", program="tt")
    assert human.returncode == 0 and "Agents" in human.stdout


def test_town_options_are_accepted_after_the_command(tmp_path: Path, town_name: str, redis_url: str) -> None:
    fake_town(tmp_path, town_name, redis_url)
    result = run_cli("--town", str(tmp_path / "elsewhere"), "status", "--town", str(tmp_path), "-v", "--json",
                     program="tt")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["name"] == town_name
    nested = run_cli("backlog", "list", "-t", str(tmp_path), "--json", program="tt")
    assert nested.returncode == 0 and json.loads(nested.stdout)["count"] == 0


def test_an_unreachable_redis_is_one_line_and_exit_1(tmp_path: Path, town_name: str) -> None:
    fake_town(tmp_path, town_name, f"redis://user:secret@127.0.0.1:{free_port()}")
    result = run_cli("--town", str(tmp_path), "status", program="tt")
    assert result.returncode == 1
    assert result.stderr.startswith("error: Redis unavailable at redis://user:****@127.0.0.1:")
    assert len(result.stderr.splitlines()) == 1 and "secret" not in result.stderr


def test_square_brackets_in_task_text_print_as_written(tmp_path: Path, town_name: str, redis_url: str) -> None:
    fake_town(tmp_path, town_name, redis_url)
    texts = ["Fix the [/red] parser", "[urgent] fix", "fakeagent[bob 1]"]
    for text in texts:
        tt(tmp_path, "backlog", "add", text)
    listed = run_cli("--town", str(tmp_path), "backlog", "list", program="tt", env={"COLUMNS": "200"})
    assert listed.returncode == 0, listed.stderr
    for text in texts:
        assert text in listed.stdout
