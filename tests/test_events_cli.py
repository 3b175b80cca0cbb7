"""``tt events``: recent events with filters, ``--json`` lines, and ``--follow`` until Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from townhall.testing.process import BIN, run_cli
from townhall.testing.towns import write_town


def tt(town: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("--town", str(town), *args, program="tt")


def test_recent_events_filtered_as_lines_and_json(tmp_path: Path, town_name: str, redis_url: str) -> None:
    write_town(tmp_path, town_name, redis_url=redis_url)
    assert tt(tmp_path, "spawn", "w1").returncode == 0
    assert tt(tmp_path, "spawn", "w2").returncode == 0
    assigned = json.loads(tt(tmp_path, "assign", "w1", "fix the bug", "--json").stdout)
    assert tt(tmp_path, "send", "w2", "fyi", "--kind", "info").returncode == 0

    lines = tt(tmp_path, "events", "--agent", "w1", "--json")
    assert lines.returncode == 0, lines.stderr
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [r["event_type"] for r in records] == ["agent_created", "task_created", "task_assigned"]
    assert records[-1]["task_id"] == assigned["task_id"] and records[-1]["id"]

    human = tt(tmp_path, "events", "--types", "message_sent", "-n", "5")
    assert human.returncode == 0 and len(human.stdout.splitlines()) == 1 and "message_sent" in human.stdout

    bad = tt(tmp_path, "events", "--types", "nonsense")
    assert bad.returncode == 1 and "nonsense" in bad.stderr


def test_follow_prints_new_events_until_interrupted(tmp_path: Path, town_name: str, redis_url: str) -> None:
    write_town(tmp_path, town_name, redis_url=redis_url)
    assert tt(tmp_path, "spawn", "w1").returncode == 0
    follower = subprocess.Popen([str(BIN / "tt"), "--town", str(tmp_path), "events", "--follow", "--json",
                                 "--types", "task_assigned,agent_created"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())  # the recent one: it is running now
        assert first["event_type"] == "agent_created"
        assigned = json.loads(tt(tmp_path, "assign", "w1", "live work", "--json").stdout)
        live = json.loads(follower.stdout.readline())
        assert (live["event_type"], live["task_id"]) == ("task_assigned", assigned["task_id"])
    finally:
        follower.send_signal(signal.SIGINT)
        code = follower.wait(timeout=20)
    assert code == 0, follower.stderr.read() if follower.stderr else ""
