"""Who a worker is: its agent record (registered or reused) and its liveness key.

Restarting a worker must not pile up same-named agents (GAP 38): ``--id`` names the record; without it
the single agent with that name is reused, and a new one is registered only when there is none. The
liveness key ``TownKeys.worker_alive`` (``host:pid:token``, TTL a few heartbeats) keeps two live
processes from serving one agent, while a SIGKILLed worker's key does not block its restart.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

import msgspec

from townhall.domain import Agent, AgentState, is_uuid
from townhall.services.town import TownServices


class IdentityError(Exception):
    """The worker cannot start as asked (bad id, ambiguous name, another live worker)."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Identity(msgspec.Struct, frozen=True):
    agent: Agent
    #: Launched for a known record (``--id``): a pending stop flag is obeyed, not cleared.
    launched: bool


async def register(services: TownServices, name: str, agent_id: str | None, cli: str | None,
                   *, ambiguous_exit: int) -> Identity:
    store = services.store
    if agent_id is not None:
        if not is_uuid(agent_id):
            raise IdentityError(f"invalid agent id '{agent_id}'", exit_code=1)
        agent_id = agent_id.lower()
        agent = await store.agents.get(agent_id)
        if agent is None:
            agent = Agent.new(name, cli or services.town.config.default_cli, agent_id=agent_id)
            await store.agents.create(agent)
        return Identity(agent=agent, launched=True)
    same = [a for a in await store.agents.list_all() if a.name == name]
    if len(same) > 1:
        ids = ", ".join(a.id for a in same)
        raise IdentityError(f"several agents are named '{name}' ({ids}); start with --id", exit_code=ambiguous_exit)
    if same:
        agent = same[0]
        if agent.state.is_terminal:
            await store.agents.clear_stop(agent.id)
        return Identity(agent=agent, launched=False)
    agent = await services.agents.spawn(name, cli=cli, launch=False)
    return Identity(agent=agent, launched=False)


class Liveness:
    """The ``host:pid:token`` value this process writes to its agent's liveness key."""

    def __init__(self, ttl: timedelta) -> None:
        self.host = socket.gethostname()
        self.value = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.ttl_ms = int(ttl.total_seconds() * 1000)

    def holder_is_dead_here(self, holder: str) -> bool:
        """A holder on this host whose process is gone (a SIGKILLed predecessor)."""
        host, _, rest = holder.partition(":")
        pid_text = rest.partition(":")[0]
        if host != self.host or not pid_text.isdigit():
            return False
        pid = int(pid_text)
        if pid == os.getpid():
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


__all__ = ["AgentState", "Identity", "IdentityError", "Liveness", "register"]
