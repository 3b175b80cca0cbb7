"""Issue 17 item 5: what ``tt`` prints for a person reads right, also when piped."""

from __future__ import annotations

import json
from pathlib import Path

import click

from townhall.cli.groups import tt as tt_group
from townhall.domain import AgentState, TaskState
from townhall.testing.process import run_cli
from townhall.store.agents import AgentPatch
from townhall.testing.seed import TownSeed


def human(town: Path, *args: str) -> str:
    result = run_cli("--town", str(town), *args, program="tt")  # piped: not a terminal
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_status_inbox_send_and_tags_read_right_when_piped(town_dir: Path, seed: TownSeed) -> None:
    stopped = await seed.agent("a-long-agent-name-for-the-status-table", AgentState.STOPPED)
    done = await seed.task(TaskState.COMPLETED, "finished long ago", assigned_to=stopped.id)
    await seed.store.agents.update(stopped.id, AgentPatch(current_task=done.id))
    worker = await seed.agent("w1")
    await seed.assigned_task(worker, "Fix the [urgent] parser")

    status = human(town_dir, "status")
    row = next(line for line in status.splitlines() if stopped.id[:8] in line)
    assert "Stopped" in row and "…" not in status  # whole cells, not cut to 80 columns
    assert stopped.nickname and stopped.nickname in row  # the nickname column
    assert "finished long ago" not in status  # a finished task is not anyone's current task
    listed = json.loads(run_cli("--town", str(town_dir), "status", "--json", program="tt").stdout)
    assert [a["current_scope"] for a in listed["agents"] if a["id"] == stopped.id] == [None]

    inbox = human(town_dir, "inbox", "w1")
    assert "Fix the [urgent] parser" in inbox and "task assignment" not in inbox

    sent = human(town_dir, "send", "w1", "hello")
    assert sent.strip().endswith("to w1")

    run_cli("--town", str(town_dir), "backlog", "add", "tagged", "--tag", "docs", "--tag", "p1", program="tt")
    backlog = human(town_dir, "backlog", "list")
    assert "docs, p1" in backlog and "['docs'" not in backlog


def test_every_subcommand_has_help_text() -> None:
    def walk(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
        found: list[tuple[str, click.Command]] = []
        for name, command in group.commands.items():
            found.append((f"{prefix} {name}", command))
            if isinstance(command, click.Group):
                found += walk(command, f"{prefix} {name}")
        return found

    missing = [name for name, command in walk(tt_group, "tt") if not (command.help or "").strip()]
    assert missing == []
