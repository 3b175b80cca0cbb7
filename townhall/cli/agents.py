"""Agent commands: spawn, run a worker, kill, restart, prune."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from townhall.cli.common import run_in_town, services_command, town_dir, with_services
from townhall.cli.output import Answer, json_option
from townhall.domain_errors import DomainError
from townhall.runtime import Role
from townhall.services.pool import DEFAULT_POOL, Pool, check_pool_prefix
from townhall.services.town import TownServices
from townhall.views.agent_actions import CLOSE, INTERRUPT, KILL, RESTART, RESUME, AgentAction
from townhall.views.agents import PruneResponse, SpawnResponse
from townhall.worker import run_worker


def serve_agent(town: str, name: str | None, agent_id: str | None, cli: str | None,
                pool: str | None = None) -> NoReturn:
    """Run the worker for agent ``name`` in this process and exit with its code (``tt agent-loop``
    and ``townhall worker``). Without ``name`` a pool worker of pool ``pool`` (default ``worker``); a
    prefix that is not a valid agent name, or a pool with a name, is a usage error (exit 2)."""
    if name is not None and pool is not None:
        raise click.UsageError("give a NAME (a named agent) or --pool (a pool worker), not both")
    try:
        prefix = check_pool_prefix(pool if pool is not None else DEFAULT_POOL)
    except DomainError as exc:
        raise click.BadParameter(str(exc), param_hint="'--pool'") from None
    serves = Pool(prefix) if name is None else name
    sys.exit(run_in_town(town, lambda runtime: run_worker(runtime, serves, agent_id, cli), role=Role.WORKER))


#: ``--pool`` of ``tt agent-loop`` and ``townhall worker``.
pool_option = click.option("--pool", default=None, help="Without NAME: the pool's name prefix (default: worker).")


@click.command()
@click.argument("name")
@click.option("--cli", default=None, help="CLI preset (default: the town's default_cli).")
@click.option("--role", default=None)
@click.option("--nickname", default=None)
@click.option("--parent", default=None, help="Parent agent id.")
@click.option("--foreground", is_flag=True, help="Run the worker in this process instead of launching it.")
@json_option
@click.pass_context
def spawn(ctx: click.Context, name: str, cli: str | None, role: str | None, nickname: str | None,
          parent: str | None, foreground: bool, as_json: bool) -> None:
    """Register an agent and start its worker (through the town's launcher)."""
    # Not @services_command: the foreground worker runs its own event loop once this one is closed.
    agent = with_services(ctx, lambda services: services.agents.spawn(
        name, cli=cli, role_id=role, nickname=nickname, parent_agent_id=parent, launch=not foreground))
    Answer(SpawnResponse.of(agent), f"Spawned {agent.name} ({agent.id}) with cli {agent.cli}").show(as_json)
    if foreground:
        serve_agent(town_dir(ctx), agent.name, agent.id, None)


@click.command("agent-loop")
@click.argument("name", required=False)
@click.option("--id", "agent_id", default=None, help="The agent record to serve (default: the one named NAME).")
@click.option("--cli", default=None, help="CLI preset when a new agent record is registered.")
@pool_option
@click.pass_context
def agent_loop(ctx: click.Context, name: str | None, agent_id: str | None, cli: str | None, pool: str | None) -> None:
    """Run the worker for agent NAME until it stops (idle timeout, kill, prune, SIGTERM); without
    NAME, a pool worker (a new agent with a generated name, removed when it stops)."""
    serve_agent(town_dir(ctx), name, agent_id, cli, pool)


def _agent_action_command(action: AgentAction, help: str, said: str) -> click.Command:
    """``tt <action> AGENT``; ``said`` is the line a person reads, with the agent's ``{name}`` and ``{id}``."""

    @click.command(action.name, help=help)
    @click.argument("agent")
    @services_command
    async def command(services: TownServices, agent: str) -> Answer:
        response, changed = await action.apply(services, agent)
        return Answer(response, said.format(name=changed.name, id=changed.id))

    return command


kill = _agent_action_command(KILL, "Ask an agent's worker to stop (it hands back unfinished work and exits).",
                             "Stop requested for {name}")
restart = _agent_action_command(RESTART, "Restart a Stopped/Error agent: Idle again and a new worker for the same id.",
                                "Restarted {name} ({id})")
interrupt = _agent_action_command(INTERRUPT,
                                  "Pause AGENT: it takes no new work until resumed (a running task finishes).",
                                  "Paused {name}")
resume = _agent_action_command(RESUME, "Resume a paused AGENT: Idle again.", "Resumed {name}")
close = _agent_action_command(CLOSE, "Close AGENT: Draining; its worker ends its current step and stops.",
                              "Closing {name} (draining then stop)")


@click.command()
@click.option("--all", "all_agents", is_flag=True, help="Remove every agent, not only stopped ones.")
@services_command
async def prune(services: TownServices, all_agents: bool) -> Answer:
    """Remove Stopped/Error agents with their mailboxes."""
    removed = await services.agents.prune(all_agents=all_agents)
    return Answer(PruneResponse.of(removed),
                  f"Removed {len(removed)} agent(s)" + "".join(f"\n  {a.name} ({a.id})" for a in removed))


COMMANDS = (spawn, agent_loop, kill, restart, interrupt, resume, close, prune)
