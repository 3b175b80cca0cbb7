"""Pause, resume and close an agent from outside (REST, ``tt``): the original's interrupt, resume and
close (reference §10.3), each an atomic state change with an activity line and a town event.

The worker obeys the state: a ``Paused`` agent takes no new work (a running CLI finishes its task); a
closing agent (``Draining`` with the stop flag) finishes its step, hands back what it had not begun,
and stops.
"""

from __future__ import annotations

from townhall.domain import AgentState
from townhall.domain.agents import ACTIVE_AGENT_STATES, Agent
from townhall.domain.events import TownEvent
from townhall.domain_errors import AgentNotFound, Conflict
from townhall.services.agents import AgentService
from townhall.store import TownStore
from townhall.store.agents import AgentPatch

#: Interrupt and close apply to an agent that has a worker (or is about to): not to a terminal one.
_NOT_TERMINAL = ACTIVE_AGENT_STATES


class AgentControl:
    def __init__(self, store: TownStore, agents: AgentService) -> None:
        self.store = store
        self.agents = agents

    async def interrupt(self, ref: str) -> Agent:
        """``Paused`` (from any state but a terminal one; :class:`Conflict` otherwise)."""
        agent, old = await self._change(ref, _NOT_TERMINAL - {AgentState.PAUSED}, AgentState.PAUSED, "interrupted")
        await self._record(agent, old, AgentState.PAUSED, "⏸️ Interrupted (paused)", "agent_interrupted",
                           f"Agent {agent.name} interrupted (paused)")
        return agent

    async def resume(self, ref: str) -> Agent:
        """``Paused`` → ``Idle`` and the stop flag cleared (:class:`Conflict` unless ``Paused``)."""
        agent, old = await self._change(ref, {AgentState.PAUSED}, AgentState.IDLE, "resumed")
        await self.store.agents.clear_stop(agent.id)
        await self._record(agent, old, AgentState.IDLE, "▶️ Resumed", "agent_resumed", f"Agent {agent.name} resumed")
        return agent

    async def close(self, ref: str) -> Agent:
        """``Draining`` and the stop flag: the worker ends its current step and stops (not terminal
        only; :class:`Conflict` otherwise)."""
        agent, old = await self._change(ref, _NOT_TERMINAL - {AgentState.DRAINING}, AgentState.DRAINING, "closed")
        await self.store.agents.request_stop(agent.id)
        await self._record(agent, old, AgentState.DRAINING, "🔻 Closing (draining then stop)", "agent_stopped",
                           f"Agent {agent.name} closing (draining then stop)")
        return agent

    async def _change(self, ref: str, allowed: frozenset[AgentState] | set[AgentState], to: AgentState,
                      verb: str) -> tuple[Agent, AgentState]:
        """Resolve ``ref`` and change its state to ``to`` if it is in ``allowed`` (compare-and-set):
        the record after the change and the state before it."""
        resolved = await self.agents.resolve(ref)
        if resolved.agent is None:
            raise Conflict(f"the supervisor mailbox has no worker to be {verb}")
        old = await self.store.agents.transition(resolved.id, allowed, AgentPatch(state=to))
        if old is None:
            current = await self.store.agents.get(resolved.id)
            if current is None:
                raise AgentNotFound(ref)
            raise Conflict(f"agent '{current.name}' is {current.state.rest_name} and cannot be {verb}")
        return await self.store.agents.get(resolved.id) or resolved.agent, old

    async def _record(self, agent: Agent, old: AgentState, new: AgentState, activity: str, event_type: str,
                      message: str) -> None:
        await self.store.agents.add_activity(agent.id, activity)
        await self.store.events.emit(TownEvent(event_type=event_type, message=message, agent_id=agent.id,
                                               old_state=old.value, new_state=new.value))
