"""``tt logs``: a task's run log or an agent's worker log, read from the town's log folder."""

from __future__ import annotations

import sys

import click

from townhall.cli.common import run_in_town, town_dir
from townhall.runtime import Runtime
from townhall.services.logs import MAX_TAIL


@click.command("logs")
@click.argument("ref", metavar="AGENT|TASK_ID")
@click.option("-f", "--follow", is_flag=True, help="Keep printing lines as they are written (Ctrl-C ends).")
@click.option("-n", "--tail", type=click.IntRange(0, MAX_TAIL), help="Only the last N lines.")
@click.option("--attempt", type=click.IntRange(1), help="A task's run log of this attempt (default: the latest).")
@click.pass_context
def logs(ctx: click.Context, ref: str, follow: bool, tail: int | None, attempt: int | None) -> None:
    """Print a task's run log (TASK_ID: its latest attempt) or an agent's worker log (a name or id)."""

    async def show(runtime: Runtime) -> None:
        service = runtime.services.logs
        log_file = await (service.task_log(ref, attempt) if attempt else service.resolve(ref))
        out = sys.stdout.buffer
        async for chunk in await service.read(log_file, tail=tail, follow=follow):
            out.write(chunk)
            out.flush()

    try:
        run_in_town(town_dir(ctx), show)
    except KeyboardInterrupt:
        pass  # the way to end -f


COMMANDS = (logs,)
