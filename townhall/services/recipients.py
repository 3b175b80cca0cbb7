"""Who may be handed work: a dead agent (``Stopped``/``Error``) refuses it unless asked to start it.

Assigning to a dead agent used to answer "Assigned" and park the task in an inbox no worker reads
(issue 11). Direct assignment, claim and assign-all resolve their agent here; with ``start`` a dead agent
is restarted through the launcher first. Messages are not handed-over work: they are still accepted for
a stopped agent and wait in its inbox.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from townhall.auth import Principal
from townhall.domain import DEAD_AGENT_STATES, Agent
from townhall.domain_errors import AgentDown, Conflict
from townhall.services.agents import AgentRef, AgentService


class WorkRecipients:
    """Resolves the agent a unit of work is handed to. ``restart(agent_id)`` is the lifecycle's
    restart (terminal state → ``Idle`` and a worker through the launcher)."""

    def __init__(self, agents: AgentService, restart: Callable[[str], Awaitable[Agent]]) -> None:
        self.agents = agents
        self._restart = restart

    async def resolve(self, ref: str, *, start: bool = False, caller: Principal | None = None) -> AgentRef:
        """The agent ``ref`` names, able to take work. A ``Stopped``/``Error`` agent raises
        :class:`AgentDown`, or with ``start`` is restarted first. The supervisor mailbox and agents in
        any other state (``Cold`` included: scaled to zero, not dead) take work as they are. A
        ``caller`` who may not target the agent's preset gets :class:`PresetNotAllowed` first."""
        target = await self.agents.resolve(ref)
        self.agents.check_may_assign(target, caller)
        if target.agent is None or target.agent.state not in DEAD_AGENT_STATES:
            return target
        if not start:
            raise AgentDown(target.agent.name, target.agent.state.rest_name)
        try:
            restarted = await self._restart(target.id)
        except Conflict:
            # A concurrent start won the restart: fine if the agent is up now.
            again = await self.agents.resolve(target.id)
            if again.agent is not None and again.agent.state in DEAD_AGENT_STATES:
                raise
            return again
        return AgentRef(id=restarted.id, agent=restarted)
