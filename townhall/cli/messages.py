"""Mailbox and recovery commands: send, look at an inbox, recover dead agents, reclaim their work.

With ``--json`` each prints the body of its REST route (``townhall.views``)."""

from __future__ import annotations

import click

from townhall.cli.common import services_command
from townhall.cli.options import start_option
from townhall.cli.output import Answer, table
from townhall.domain import SUPERVISOR_ID
from townhall.services.messages import InboxView
from townhall.services.town import TownServices
from townhall.views.agents import InboxResponse
from townhall.views.messages import SendResponse
from townhall.views.recovery import OrphanResponse, ReclaimResponse, RecoverResponse


@click.command()
@click.argument("to")
@click.argument("message")
@click.option("--kind", default="task", show_default=True,
              help="task, query, info, ack, status_request (answered with the worker's status) or shutdown "
                   "(the worker stops when done); the last two send no text.")
@click.option("--from", "sender", default=None, help="Sender (agent reference or UUID; default supervisor).")
@click.option("--urgent", is_flag=True)
@services_command
async def send(services: TownServices, to: str, message: str, kind: str, sender: str | None, urgent: bool) -> Answer:
    """Send a message to an agent's inbox."""
    sent = await services.messages.send(to, message, kind=kind, sender=sender, urgent=urgent)
    return Answer(SendResponse.of(sent),
                  f"Sent {sent.message_id} to {await _name_of(services, sent.to_agent)}{' (urgent)' if urgent else ''}")


async def _name_of(services: TownServices, agent_id: str) -> str:
    if agent_id == SUPERVISOR_ID:
        return "supervisor"
    agent = await services.agents.get(agent_id)
    return agent.name if agent else agent_id


@click.command()
@click.argument("agent")
@services_command
async def inbox(services: TownServices, agent: str) -> Answer:
    """An agent's inbox (without taking anything out)."""
    view = await services.messages.inbox(agent)
    summaries = await _summaries(services, view)
    return Answer(InboxResponse.of(agent, view),
                  lambda: table(f"Inbox: {view.total} message(s), {view.urgent} urgent",
                                ["id", "from", "type", "summary"],
                                [[m.id[:8], m.from_[:8], m.type, s[:60]] for m, s in zip(view.messages, summaries)]))


async def _summaries(services: TownServices, view: InboxView) -> list[str]:
    """What a person reads for each message: a task assignment shows the task's description."""
    wanted = sorted({m.task_id for m in view.messages if m.task_id})
    tasks = {t.id: t for t in await services.tasks.get_many(wanted) if t is not None}
    return [tasks[m.task_id].description if m.task_id in tasks else m.summary for m in view.messages]


@click.command()
@services_command
async def recover(services: TownServices) -> Answer:
    """Mark agents whose worker is gone Stopped and put back the work they had taken."""
    report = await services.recovery.recover()
    return Answer(RecoverResponse.of(report), f"Checked {report.checked}, recovered {len(report.recovered)}"
                  + "".join(f"\n  {a.name} (was {a.state.rest_name})" for a in report.recovered))


@click.command()
@click.option("--to-backlog", is_flag=True, help="Put dead agents' tasks back in the backlog.")
@click.option("--to", "to_agent", default=None, help="Move dead agents' work to this agent.")
@click.option("--from", "from_name", default=None, help="Only the dead agent with this name.")
@start_option
@services_command
async def reclaim(services: TownServices, to_backlog: bool, to_agent: str | None, from_name: str | None,
                  start: bool) -> Answer:
    """Work left in dead (Stopped/Error) agents' mailboxes: list it, or move it."""
    report = await services.recovery.reclaim(to_backlog=to_backlog, to=to_agent, from_name=from_name, start=start)
    return Answer(ReclaimResponse.of(report), lambda: table(f"Reclaimed {report.reclaimed} → {report.destination}",
                                        ["from", "type", "task", "description"],
                                        [[i.from_agent, i.type, i.task_id, i.description[:50]] for i in report.items]))


@click.command()
@click.option("--action", default="list", show_default=True,
              type=click.Choice(["list", "to_backlog", "backlog", "cancel", "delete"]),
              help="What to do with them: list only, reset and queue them (to_backlog), cancel or delete them.")
@services_command
async def orphans(services: TownServices, action: str) -> Answer:
    """Open tasks whose assignee is gone or Stopped/Error: list them, or act on them."""
    report = await services.recovery.orphan_tasks(action)
    return Answer(OrphanResponse.of(report), lambda: table(f"Orphan tasks: {report.count} ({report.action.value})",
                                                           ["task", "assigned to", "state", "reason"],
                                                           [[o.task_id, o.assigned_to, o.state, o.reason]
                                                            for o in report.orphans]))


COMMANDS = (send, inbox, recover, reclaim, orphans)
