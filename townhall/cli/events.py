"""``tt events``: the town's recent events, and with ``--follow`` the live ones (docs/events.md)."""

from __future__ import annotations

import click
import msgspec

from townhall.cli.common import run_in_town, town_dir
from townhall.cli.output import json_option
from townhall.domain.events import EventRecord
from townhall.runtime import Role, Runtime

#: ``--follow`` prints nothing while nothing happens; the feed still wakes now and then.
FOLLOW_WAKE_SECS = 30.0


def _line(record: EventRecord) -> str:
    when = record.timestamp[:19].replace("T", " ") if record.timestamp else "-"
    return f"{when}  {record.event_type:<30} {record.message}"


@click.command()
@click.option("--follow", "-f", is_flag=True, help="After the recent events, print new ones as they happen (Ctrl-C stops).")
@click.option("--agent", default=None, help="Only events naming this agent (name or id).")
@click.option("--task", default=None, help="Only events of this task (its UUID).")
@click.option("--mission", default=None, help="Only events of this mission (its UUID).")
@click.option("--types", default=None, help="Comma list of event types, e.g. task_completed,task_failed.")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(0, 10_000),
              help="How many recent events to print first.")
@json_option
@click.pass_context
def events(ctx: click.Context, follow: bool, agent: str | None, task: str | None, mission: str | None,
           types: str | None, limit: int, as_json: bool) -> None:
    """The town's events, oldest first: task, agent, message and scaling changes, and what other tools
    wrote to the town stream. ``--json`` prints one JSON object per line."""

    def show(record: EventRecord) -> None:
        click.echo(msgspec.json.encode(record).decode() if as_json else _line(record))

    async def action(runtime: Runtime) -> None:
        services = runtime.services
        query = await services.events.query(agent=agent, task=task, mission=mission, types=types)
        recent = await services.events.recent(query.filter, limit)
        for record in recent:
            show(record)
        if not follow:
            return
        feed = runtime.feed
        await feed.start()
        after = recent[-1].id if recent else await services.store.events.last_id()
        async for batch in feed.follow(query.filter, after, FOLLOW_WAKE_SECS):
            for item in batch:
                show(item.record)

    try:
        run_in_town(town_dir(ctx), action, role=Role.WORKER if follow else Role.COMMAND)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --follow ends


COMMANDS = (events,)
