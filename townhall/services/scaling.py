"""The autoscaler signal (``GET /api/scaling``, reference §9.4): how much work is queued and in flight,
how many workers there are, and whether an orchestrator should add or remove some.

The measurement reads only open work — the backlog length, agent inboxes (first 100 messages each),
the ``running`` state index and the agents — so its cost never grows with finished tasks.

Measurement by queue backend:

* ``lists``: ``pending = backlog length + pending assigned tasks``; ``in_flight`` = the union of the
  running tasks and the current task of every active agent. Unlike upstream (GAP 32), an agent's
  ``current_task`` that is finished or gone is not counted, and a task that still sits in an inbox is
  counted once, as pending.
* ``streams`` (``use_streams = true``): ``pending`` = the docket group's unread entries (lag, or
  ``XLEN`` when the lag is unknown) **plus** work assigned directly to agent inboxes, which never goes
  through the docket (contract §7: no queued work may be invisible). ``in_flight`` = the larger of the
  docket's delivered-but-unacknowledged entries and the tasks known to be running: a docket task that
  is running appears in both, and which running task came from an inbox is not recorded, so the
  larger number is the best estimate that never counts one task twice.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from datetime import datetime, timedelta
from typing import Awaitable, Iterable, Sequence, TypeVar

import msgspec
import redis.exceptions

from townhall.domain import Agent, AgentState, TaskState, utc_now
from townhall.queues import QueueBackend
from townhall.services.pending import PendingSource, pending_assigned_tasks
from townhall.store import TownStore

T = TypeVar("T")
log = logging.getLogger("townhall")

LISTS_BACKEND = "lists"


class ScalingRecommendation(str, enum.Enum):
    SCALE_UP = "scale_up"
    STEADY = "steady"
    SCALE_DOWN = "scale_down"
    SCALE_TO_ZERO = "scale_to_zero"


class ScalingUnavailable(Exception):
    """The queue could not be measured (Redis unreachable or failing): the signal is unknown."""


class QueueMeasurement(msgspec.Struct, frozen=True):
    pending: int
    in_flight: int

    @property
    def depth(self) -> int:
        return self.pending + self.in_flight


class ScalingDecision(msgspec.Struct, frozen=True):
    active_agents: int
    cold_agents: int
    desired_agents: int
    recommendation: ScalingRecommendation


class ScalingSignal(msgspec.Struct, frozen=True):
    """The body of ``GET /api/scaling``; every field is always present."""

    town: str
    timestamp: str
    queue_depth: int
    pending_tasks: int
    in_flight_tasks: int
    active_agents: int
    cold_agents: int
    desired_agents: int
    max_agents: int
    scaling_recommendation: ScalingRecommendation


def decide(
    pending: int,
    in_flight: int,
    agents: Iterable[Agent],
    *,
    max_agents: int,
    idle_timeout_secs: int,
    now: datetime,
    stale_after_secs: int | None = None,
) -> ScalingDecision:
    """The recommendation algorithm of reference §9.4, with no I/O.

    Only live workers count as active: with ``stale_after_secs``, an active agent whose heartbeat is
    older than that is a dead worker (SIGKILLed, host lost) until the upkeep sweep stops it, and
    counting it would keep an autoscaler from replacing it.

    One worker per unit of work (``desired = min(pending + in_flight, max_agents)``). Scale-down needs
    zero pending work; scale-to-zero additionally needs every active worker idle for the idle timeout
    (with ``idle_timeout_secs = 0``, only when no worker is active at all).
    """
    agents = list(agents)
    active = live_agents(agents, now, stale_after_secs)
    cold = sum(1 for a in agents if a.state is AgentState.COLD)
    desired = min(pending + in_flight, max_agents)
    if idle_timeout_secs == 0:
        all_active_idle = not active
    else:
        all_active_idle = all(
            a.state is AgentState.IDLE and int((now - a.last_active_at).total_seconds()) >= idle_timeout_secs
            for a in active
        )
    if desired == 0 and pending == 0 and in_flight == 0 and all_active_idle:
        recommendation = ScalingRecommendation.SCALE_TO_ZERO
    elif desired > len(active):
        recommendation = ScalingRecommendation.SCALE_UP
    elif desired < len(active) and pending == 0:
        recommendation = ScalingRecommendation.SCALE_DOWN
    else:
        recommendation = ScalingRecommendation.STEADY
    return ScalingDecision(
        active_agents=len(active), cold_agents=cold, desired_agents=desired, recommendation=recommendation
    )


def live_agents(agents: Iterable[Agent], now: datetime, stale_after_secs: int | None) -> list[Agent]:
    """Active agents whose heartbeat has not lapsed (all active agents without ``stale_after_secs``)."""
    limit = None if stale_after_secs is None else timedelta(seconds=stale_after_secs)
    return [a for a in agents if a.state.is_active and (limit is None or now - a.last_heartbeat <= limit)]


async def scaling_signal(
    store: TownStore,
    queue: QueueBackend,
    *,
    town: str,
    max_agents: int,
    idle_timeout_secs: int,
    stale_after_secs: int | None = None,
) -> ScalingSignal:
    """Measure the town and decide; raises :class:`ScalingUnavailable` when Redis fails."""
    agents = await _agents(store)
    now = utc_now()
    measured = await measure_queue(store, queue, agents, live=live_agents(agents, now, stale_after_secs))
    decision = decide(measured.pending, measured.in_flight, agents, max_agents=max_agents,
                      idle_timeout_secs=idle_timeout_secs, now=now, stale_after_secs=stale_after_secs)
    await _announce(store, decision, measured)
    return ScalingSignal(
        town=town,
        timestamp=now.isoformat(),
        queue_depth=measured.depth,
        pending_tasks=measured.pending,
        in_flight_tasks=measured.in_flight,
        active_agents=decision.active_agents,
        cold_agents=decision.cold_agents,
        desired_agents=decision.desired_agents,
        max_agents=max_agents,
        scaling_recommendation=decision.recommendation,
    )


async def measure_queue(store: TownStore, queue: QueueBackend, agents: Sequence[Agent],
                        live: Sequence[Agent] | None = None) -> QueueMeasurement:
    """Shared work as the queue backend measures it, plus work assigned directly to agents; the
    current tasks of ``live`` agents (default: every active one) count as in flight.

    With ``lists`` the backend's unread work is the backlog length and it reports nothing in flight, so
    this is exactly the reference's list-mode measurement; with ``streams`` it is the docket's lag and
    pending entries. Any other backend is measured the same way, through its ``measure()``.
    """
    what = (
        "Failed to read backlog length" if queue.name == LISTS_BACKEND
        else f"Failed to measure the {queue.name} queue"
    )
    depth, assigned, running = await asyncio.gather(
        _step(what, queue.measure()),
        _step("Failed to list pending tasks", pending_assigned_tasks(store, list(agents))),
        _step("Failed to list tasks", store.tasks.ids_in_state(TaskState.RUNNING)),
    )
    queued = {p.task_id for p in assigned if p.source is PendingSource.TASK}
    in_flight = await _in_flight(store, [a for a in agents if a.state.is_active] if live is None else live,
                                 running, queued)
    return QueueMeasurement(pending=depth.unread + len(assigned), in_flight=max(depth.in_flight, len(in_flight)))


async def _in_flight(store: TownStore, agents: Sequence[Agent], running: set[str], queued: set[str]) -> set[str]:
    """Running tasks plus the given agents' current tasks that are still open, minus what is still queued."""
    pointers = sorted({a.current_task for a in agents if a.current_task} - running)
    records = await _step("Failed to list tasks", store.tasks.get_many(pointers))
    live = {tid for tid, task in zip(pointers, records) if task is not None and not task.state.is_terminal}
    return (running | live) - queued


async def _announce(store: TownStore, decision: ScalingDecision, measured: QueueMeasurement) -> None:
    """A recommendation that differs from the last one announced goes on the event stream (once,
    whoever computed it). The signal itself does not depend on this write."""
    try:
        await store.events.note_recommendation(
            decision.recommendation.value,
            f"scaling: {decision.recommendation.value} (queue depth {measured.depth}, "
            f"{decision.active_agents} active, {decision.desired_agents} desired)",
        )
    except (redis.exceptions.RedisError, OSError) as exc:
        log.debug("scaling recommendation not announced: %s", exc)


async def _agents(store: TownStore) -> list[Agent]:
    try:
        return await store.agents.list_all()
    except redis.exceptions.ResponseError:
        return []  # upstream treats an unreadable agent listing as no agents
    except (redis.exceptions.RedisError, OSError) as exc:
        raise ScalingUnavailable(f"Failed to list agents: {exc}") from exc


async def _step(what: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except ScalingUnavailable:
        raise
    except (redis.exceptions.RedisError, OSError) as exc:
        raise ScalingUnavailable(f"{what}: {exc}") from exc
