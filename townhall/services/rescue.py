"""Work rescue: a worker that died (its heartbeat lapsed) or a pool worker that left gives back what
it held, where a live worker will get it (reference §5.4; docs/worker.md "Liveness").

Townhall's upkeep calls :meth:`WorkRescue.sweep` every sweep period: an active agent whose heartbeat
is older than ``[agent] stale_after_secs`` *and* whose liveness key no worker holds is declared lost
— ``Stopped`` in one Lua step (:meth:`townhall.store.liveness.LivenessStore.declare_lost`), so with
several townhall replicas exactly one of them rescues its work. Shared work goes back to the shared
queue; a named agent's direct assignments stay in its inbox (for its next worker, or ``reclaim``);
a pool agent's go to the shared queue too, and its record is deleted (pool records live only as long
as their worker, so scaling 0 → 50 → 0 leaves no pile of ``Stopped`` records).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from townhall.domain import TERMINAL_AGENT_STATES, Agent, AgentState, utc_now
from townhall.services.recovery import RecoveryService

log = logging.getLogger("townhall")

LOST_REASON = "heartbeat lost"


class WorkRescue:
    """Gives back what gone workers held, and retires pool agents."""

    def __init__(self, recovery: RecoveryService) -> None:
        # What is rescued goes back the way ``recover`` gives it back: the same town, store and queue.
        self.recovery = recovery
        self.town, self.store, self.queue = recovery.town, recovery.store, recovery.queue

    async def sweep(self) -> list[Agent]:
        """Declare lost the active agents whose worker stopped beating, rescue their work; retire the
        ``Stopped`` pool agents nobody serves any more (a worker that died after ``Stopped``, a kill
        or ``recover``). A pool agent in ``Error`` (its CLI cannot run) stays, to show why, until
        pruned. Returns the lost."""
        limit = timedelta(seconds=self.town.config.agent.stale_after_secs)
        now = utc_now()
        lost: list[Agent] = []
        for agent in await self.store.agents.list_all():
            if agent.state.is_active and now - agent.last_heartbeat > limit:
                if not await self.store.liveness.declare_lost(agent.id, agent.state):
                    continue  # a worker holds it again, or another townhall was first
                log.warning("agent %s (%s): %s, state %s → stopped", agent.name, agent.id, LOST_REASON,
                            agent.state.value)
                await self.store.agents.add_activity(agent.id, f"🛑 Stopped ({LOST_REASON})")
                lost.append(agent)
                await (self.retire(agent) if agent.pool is not None else self.rescue(agent))
            elif agent.pool is not None and agent.state is AgentState.STOPPED \
                    and await self.store.liveness.holder(agent.id) is None:
                await self.retire(agent)
        return lost

    async def rescue(self, agent: Agent) -> int:
        """Put back what ``agent``'s (gone) worker held; a pool agent's mailbox goes to the shared
        queue as well. The number of units put back."""
        count = await self.queue.requeue_dead(agent.id, pool=agent.pool is not None)
        if agent.pool is not None:
            report = await self.recovery.reclaim(to_backlog=True, from_name=agent.name)
            count += report.reclaimed
        return count

    async def retire(self, agent: Agent) -> bool:
        """A pool agent whose worker is gone: its work rescued, then its record deleted (only while it
        is terminal). ``True`` if it was deleted here."""
        await self.rescue(agent)
        deleted = await self.store.agents.delete_if_state(agent.id, TERMINAL_AGENT_STATES)
        if deleted:
            log.info("pool agent %s (%s) retired", agent.name, agent.id)
        return deleted
