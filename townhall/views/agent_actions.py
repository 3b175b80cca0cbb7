"""The changes of one agent's state that ``tt`` and the REST API both offer (kill, restart, interrupt,
resume, close): which service makes each and the ``status`` its answer reports. One table, so that a
command and its route cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from townhall.services.town import TownServices
from townhall.views.agents import AgentActionResponse


class Changed(Protocol):
    """What a change returns: the agent's record, or (kill) its resolved reference."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class AgentAction:
    #: The command's name and the last segment of the route's path.
    name: str
    #: ``AgentActionResponse.status``.
    status: str
    change: Callable[[TownServices, str], Awaitable[Changed]]

    async def apply(self, services: TownServices, agent: str) -> tuple[AgentActionResponse, Changed]:
        """Change ``agent`` (any agent reference); the answer and what the change returned."""
        changed = await self.change(services, agent)
        return AgentActionResponse(status=self.status, agent=agent, agent_id=changed.id), changed


KILL = AgentAction("kill", "stopped", lambda services, agent: services.lifecycle.kill(agent))
RESTART = AgentAction("restart", "restarted", lambda services, agent: services.lifecycle.restart(agent))
INTERRUPT = AgentAction("interrupt", "paused", lambda services, agent: services.control.interrupt(agent))
RESUME = AgentAction("resume", "resumed", lambda services, agent: services.control.resume(agent))
CLOSE = AgentAction("close", "closing", lambda services, agent: services.control.close(agent))
