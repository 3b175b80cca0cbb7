"""An agent's life: a worker starts serving it, begins and ends rounds of work, beats, drains and stops;
``kill`` and ``restart`` (REST, CLI) change the same record from outside (contract §7, reference §10).

Every state change here is one compare-and-set or patch on the agent record, so the worker and the
REST/CLI paths cannot disagree about what a state means. Restarting a worker does not pile up same-named
agents (GAP 38): ``--id`` names the record; without it the single agent with that name is reused, and a
new one is registered only when there is none. The liveness key ``TownKeys.worker_alive`` keeps two live
processes from serving one agent, while a SIGKILLed worker's key does not block its restart.

Fixes over upstream: restart only from a terminal state, and it starts a worker through the launcher
(GAP 24).
"""

from __future__ import annotations

import enum
import logging
from typing import Protocol

import msgspec

from townhall.config import Town
from townhall.domain import (
    TERMINAL_AGENT_STATES,
    Agent,
    AgentState,
    Message,
    StatusResponseBody,
    Task,
    is_uuid,
    utc_now,
)
from townhall.domain_errors import AgentNotFound, Conflict, DomainError, TaskNotFound
from townhall.services.agents import AgentRef, AgentService
from townhall.services.messages import MessageService
from townhall.services.pool import Pool, check_pool_prefix, pool_agent_name
from townhall.services.rescue import WorkRescue
from townhall.services.tasks import TaskService
from townhall.store import AgentPatch, LeftWith, TownStore

log = logging.getLogger(__name__)

#: States a worker may begin a unit of work from.
WORKABLE = (AgentState.STARTING, AgentState.IDLE, AgentState.WORKING)


class LivenessClaim(Protocol):
    """What a worker process writes to its agent's liveness key (``host:pid:token``, TTL in ms)."""

    value: str
    ttl_ms: int

    def holder_is_dead_here(self, holder: str) -> bool:
        """The current holder is a dead process on this host (a SIGKILLed predecessor)."""
        ...


class Refusal(enum.Enum):
    INVALID_ID = "invalid agent id"
    AMBIGUOUS_NAME = "several agents have that name"
    SERVED = "another worker serves the agent"


class StartRefused(Exception):
    """A worker cannot start for the agent as asked."""

    def __init__(self, message: str, refusal: Refusal) -> None:
        super().__init__(message)
        self.refusal = refusal


class Standing(enum.Enum):
    """What the agent's record tells its worker between units of work."""

    ACTIVE = "active"
    PAUSED = "paused"
    #: Stop flag set, or a terminal state.
    STOP = "stop"
    #: The record is gone (pruned).
    GONE = "gone"


class Skip(str, enum.Enum):
    """Why a delivered task assignment is not run."""

    GONE = "gone"
    FINISHED = "finished"
    REASSIGNED = "reassigned"


class NotBegun(enum.Enum):
    """Why a unit of work was not begun."""

    #: Stopped, paused or pruned meanwhile: not the worker's to run now (hand it back).
    NOT_WORKABLE = "not workable"
    #: Its task was finished by someone else meanwhile (acknowledge it).
    TASK_FINISHED = "task finished"


class Round(msgspec.Struct, frozen=True):
    """A begun unit of work: its round number, the CLI preset to run, the task's run number (1 for
    work without a task record) and its own time limit (``None``: the configured default)."""

    number: int
    cli: str
    attempt: int = 1
    timeout_secs: int | None = None


class AgentLifecycle:
    """The operations of an agent's life, for its worker and for ``kill``/``restart``."""

    def __init__(self, town: Town, store: TownStore, agents: AgentService, tasks: TaskService,
                 messages: MessageService, rescue: WorkRescue) -> None:
        self.town = town
        self.rescue = rescue
        self.store = store
        self.agents = agents
        self.tasks = tasks
        self.messages = messages

    # ---- a worker starts --------------------------------------------------------------------------
    async def start(self, name: str | Pool, agent_id: str | None, cli: str | None,
                    claim: LivenessClaim) -> Agent | None:
        """Serve agent ``name`` (record ``agent_id`` if given; a :class:`Pool`: :meth:`start_pool`):
        register or reuse the record, claim its liveness key, ``Idle`` (``Paused`` stays paused),
        activity line. ``None`` when a worker launched
        for a known record finds its stop flag set: the flag is obeyed (``Stopped``) and cleared.
        Raises :class:`StartRefused`, or the :class:`DomainError` of registering a new agent."""
        if isinstance(name, Pool):
            return await self.start_pool(name.prefix, name.hostname, cli, claim)
        agent, launched = await self._identify(name, agent_id, cli)
        await self._claim(agent, claim)
        if launched and await self.store.agents.stop_requested(agent.id):
            await self.store.agents.clear_stop(agent.id)
            await self.store.agents.set_state(agent.id, AgentState.STOPPED)
            await self.release(agent.id, claim)
            return None
        await self._serve(agent)
        return agent

    async def start_pool(self, prefix: str, hostname: str | None, cli: str | None,
                         claim: LivenessClaim) -> Agent:
        """Serve a new agent of pool ``prefix`` under a generated unique name (see
        :mod:`townhall.services.pool`); its record is removed when the worker stops (:meth:`stop`).
        Raises the :class:`DomainError` of registering it (an invalid prefix, ``max_agents``)."""
        prefix = check_pool_prefix(prefix)
        agent = await self.agents.spawn(pool_agent_name(prefix, hostname), cli=cli, launch=False, pool=prefix)
        await self._claim(agent, claim)
        await self._serve(agent)
        return agent

    async def _serve(self, agent: Agent) -> None:
        now = utc_now()
        await self.store.agents.update(agent.id, AgentPatch(
            state=AgentState.PAUSED if agent.state is AgentState.PAUSED else AgentState.IDLE,
            last_heartbeat=now, last_active_at=now,
        ))
        await self._clear_stale_current_task(agent.id)
        await self.store.agents.add_activity(agent.id, "🚀 Worker started")

    async def _identify(self, name: str, agent_id: str | None, cli: str | None) -> tuple[Agent, bool]:
        """The record and whether the worker was launched for it (``--id``: a pending stop flag is then
        obeyed, not cleared)."""
        if agent_id is not None:
            if not is_uuid(agent_id):
                raise StartRefused(f"invalid agent id '{agent_id}'", Refusal.INVALID_ID)
            agent_id = agent_id.lower()
            agent = await self.store.agents.get(agent_id)
            if agent is None:
                agent = Agent.new(name, cli or self.town.config.default_cli, agent_id=agent_id)
                await self.store.agents.create(agent)
            return agent, True
        same = [a for a in await self.store.agents.list_all() if a.name == name]
        if not same:  # maybe written by the original tt, which does not maintain our index
            same = await self.store.agents.find_unindexed(name)
        if len(same) > 1:
            ids = ", ".join(a.id for a in same)
            raise StartRefused(f"several agents are named '{name}' ({ids}); start with --id", Refusal.AMBIGUOUS_NAME)
        if same:
            if same[0].state.is_terminal:
                await self.store.agents.clear_stop(same[0].id)
            return same[0], False
        return await self.agents.spawn(name, cli=cli, launch=False), False

    async def _claim(self, agent: Agent, claim: LivenessClaim) -> None:
        liveness = self.store.liveness
        ok, holder = await liveness.acquire(agent.id, claim.value, claim.ttl_ms)
        if not ok and claim.holder_is_dead_here(holder):
            ok, holder = await liveness.acquire(agent.id, claim.value, claim.ttl_ms, takeover=holder)
        if not ok:
            raise StartRefused(f"agent {agent.name} ({agent.id}) is already served by worker {holder}",
                               Refusal.SERVED)

    async def _clear_stale_current_task(self, agent_id: str) -> None:
        agent = await self.store.agents.get(agent_id)
        if agent is None or not agent.current_task:
            return
        task = await self.store.tasks.get(agent.current_task)
        if task is None or task.state.is_terminal:
            await self.store.agents.clear_current_task(agent_id, agent.current_task)

    # ---- between units of work --------------------------------------------------------------------
    async def standing(self, agent_id: str) -> Standing:
        agent = await self.store.agents.get(agent_id)
        if agent is None:
            return Standing.GONE
        if await self.store.agents.stop_requested(agent_id) or agent.state.is_terminal:
            return Standing.STOP
        return Standing.PAUSED if agent.state is AgentState.PAUSED else Standing.ACTIVE

    async def heartbeat(self, agent_id: str, claim: LivenessClaim) -> bool:
        """Refresh the liveness key and the record's heartbeat. ``False`` (nothing written) when another
        worker holds the key now."""
        if not await self.store.liveness.refresh(agent_id, claim.value, claim.ttl_ms):
            return False
        await self.store.agents.update(agent_id, AgentPatch(last_heartbeat=utc_now()))
        return True

    async def assignment(self, agent_id: str, task_id: str, *, shared: bool) -> Task | Skip:
        """The task a delivered assignment asks ``agent_id`` to run, or why not. Shared work may have
        been assigned to someone else (a previous taker); a mailbox assignment moved elsewhere is not
        this agent's any more."""
        task = await self.store.tasks.get(task_id)
        if task is None:
            return Skip.GONE
        if task.state.is_terminal:
            return Skip.FINISHED
        if task.assigned_to not in (None, agent_id) and not shared:
            return Skip.REASSIGNED
        return task

    async def skip(self, agent_id: str, task_id: str, skip: Skip, raw: str) -> None:
        """A delivered assignment (``raw``) is not run, and never dropped silently: a task whose record
        names another assignee is left with that agent. The worker's log says why."""
        if skip is Skip.REASSIGNED:
            log.warning("not running task %s: %s", task_id, await self._leave_with_assignee(agent_id, task_id, raw))
        else:
            log.info("skipping task %s: %s", task_id, skip.value)

    async def _leave_with_assignee(self, agent_id: str, task_id: str, raw: str) -> str:
        """Make the assignee the record names hold a delivery of the task; returns what was done."""
        done, assignee = await self.store.handover.leave_with_assignee(task_id, agent_id, raw)
        if done is LeftWith.DELIVERED:
            return f"its record assigns it to {assignee}; handed to that agent's inbox"
        if done is LeftWith.HELD:
            return f"its record assigns it to {assignee or 'the backlog'}, which already holds it"
        if done is LeftWith.CLOSED:
            return "finished or deleted meanwhile"
        return "reassigned meanwhile; the new assignment has its own message"

    async def report_status(self, agent_id: str, request: Message) -> None:
        """Answer a ``status_request`` with the agent's state and current task."""
        agent = await self.store.agents.get(agent_id)
        body = StatusResponseBody(state=agent.state.rest_name if agent else "Stopped",
                                  current_task=agent.current_task if agent else None)
        await self.messages.deliver(Message.new(agent_id, request.from_, body, correlation_id=request.id))

    # ---- a unit of work ---------------------------------------------------------------------------
    async def begin(self, agent_id: str, task_id: str | None, *, cli: str) -> Round | NotBegun:
        """``Working`` (from Starting/Idle/Working only) and the task, if any, started. ``cli`` is the
        preset to run should the record vanish meanwhile."""
        now = utc_now()
        before = await self.store.agents.transition(
            agent_id, WORKABLE, AgentPatch(state=AgentState.WORKING, last_active_at=now, last_heartbeat=now))
        if before is None:
            return NotBegun.NOT_WORKABLE
        attempt, timeout = 1, None
        if task_id:
            try:
                await self.tasks.start(task_id, agent_id)
            except (Conflict, TaskNotFound):
                return NotBegun.TASK_FINISHED
            limits = await self.store.attempts.limits(task_id)  # the start counted this run
            attempt, timeout = limits.attempts, limits.timeout_secs
        agent = await self.store.agents.get(agent_id)
        return Round(number=(agent.rounds_completed if agent else 0) + 1, cli=agent.cli if agent else cli,
                     attempt=max(attempt, 1), timeout_secs=timeout)

    async def settle(self, agent_id: str, task_id: str, error: str | None, output: str) -> None:
        """The task's outcome: ``completed`` with the output, or (``error``) ``failed`` with the error
        and the output."""
        if error is None:
            await self.tasks.complete(task_id, output or "(no output)", agent_id=agent_id, open_only=True)
        else:
            await self.tasks.fail(task_id, f"{error}\n{output}".strip(), agent_id=agent_id)

    async def end_round(self, agent_id: str, round_no: int, task_id: str | None, error: str | None) -> None:
        """The round's activity line (naming the task), the round counted, ``Idle``."""
        line = "✅ completed" if error is None else f"⚠️ failed ({error})"
        about = f" task {task_id}" if task_id else ""
        await self.store.agents.add_activity(agent_id, f"Round {round_no}:{about} {line}")
        await self.store.agents.update(agent_id, AgentPatch(rounds_completed=round_no))
        await self.become_idle(agent_id)

    async def become_idle(self, agent_id: str) -> None:
        """``Idle`` again, unless the agent was stopped or paused meanwhile."""
        now = utc_now()
        await self.store.agents.transition(
            agent_id, [AgentState.WORKING, AgentState.STARTING],
            AgentPatch(state=AgentState.IDLE, last_active_at=now, last_heartbeat=now))

    async def hand_back(self, agent_id: str, task_id: str, *, release: bool) -> None:
        """A started task is not this worker's any more: with ``release`` it is ``assigned`` again for
        its next delivery (shared work is re-queued by the queue backend instead); the agent's
        ``current_task`` no longer points at it."""
        if release:
            try:
                await self.tasks.release(task_id)
            except DomainError:
                pass  # finished or gone meanwhile
        await self.store.attempts.count(task_id, -1)  # not an attempt: the run did not end by itself
        await self.store.agents.clear_current_task(agent_id, task_id)

    async def handed_back(self, agent_id: str, round_no: int, task_id: str | None, why: str) -> None:
        about = f" task {task_id}" if task_id else ""
        await self.store.agents.add_activity(agent_id, f"Round {round_no}:{about} ↩️ handed back ({why})")

    # ---- the CLI's process group --------------------------------------------------------------------
    async def cli_started(self, agent_id: str, group: str) -> None:
        """Record the running CLI's ``host:pgid`` (``TownKeys.cli_group``) for a successor to find."""
        await self.store.liveness.record_cli(agent_id, group)

    async def cli_ended(self, agent_id: str, group: str) -> None:
        await self.store.liveness.forget_cli(agent_id, group)

    async def orphaned_cli(self, agent_id: str) -> str | None:
        """The ``host:pgid`` of a CLI a previous worker recorded and never saw end."""
        return await self.store.liveness.recorded_cli(agent_id)

    # ---- a worker stops ---------------------------------------------------------------------------
    async def drain(self, agent_id: str, idle_secs: int) -> None:
        """Idle timeout reached: ``Draining`` on the way to ``Stopped``."""
        await self.store.agents.set_state(agent_id, AgentState.DRAINING)
        await self.store.agents.add_activity(
            agent_id, f"🔻 Idle timeout reached after {idle_secs}s; draining and stopping")

    async def stop(self, agent_id: str, claim: LivenessClaim, reason: str) -> None:
        """The worker ends: ``Stopped``, stop flag cleared (it was obeyed), activity line, liveness key
        released. A pool agent is then retired: what its mailbox still holds goes to the shared queue
        and its record is deleted."""
        await self.store.agents.update(agent_id, AgentPatch(state=AgentState.STOPPED, last_heartbeat=utc_now()))
        await self.store.agents.clear_stop(agent_id)
        await self.store.agents.add_activity(agent_id, f"🛑 Stopped ({reason})")
        await self.release(agent_id, claim)
        agent = await self.store.agents.get(agent_id)
        if agent is not None and agent.pool is not None:
            await self.rescue.retire(agent)

    async def broken(self, agent_id: str, claim: LivenessClaim, reason: str) -> None:
        """The agent's CLI cannot run (missing program, failing fast): ``Error`` with the reason in an
        activity line, liveness key released. ``restart`` clears it."""
        await self.store.agents.update(agent_id, AgentPatch(state=AgentState.ERROR, last_heartbeat=utc_now()))
        await self.store.agents.clear_stop(agent_id)
        await self.store.agents.add_activity(agent_id, f"❌ Error: {reason}")
        await self.release(agent_id, claim)

    async def release(self, agent_id: str, claim: LivenessClaim) -> None:
        """Give up the liveness key (only if this worker still holds it)."""
        await self.store.liveness.release(agent_id, claim.value)

    # ---- from outside (REST, CLI) -----------------------------------------------------------------
    async def kill(self, ref: str) -> AgentRef:
        """Stop flag (1 h) + ``Stopped`` + activity. The worker also obeys the flag at its next step.
        Works on the supervisor too (flag only), as upstream."""
        resolved = await self.agents.resolve(ref)
        await self.store.agents.request_stop(resolved.id)
        if resolved.agent is not None:
            await self.store.agents.set_state(resolved.id, AgentState.STOPPED)
            await self.store.agents.add_activity(resolved.id, "🛑 Stop requested")
        return resolved

    async def restart(self, ref: str) -> Agent:
        """From a terminal state only (else :class:`Conflict`): ``Idle``, rounds 0, heartbeat now, stop
        flag cleared, then a new worker for the same id through the launcher."""
        resolved = await self.agents.resolve(ref)
        if resolved.agent is None:
            raise Conflict("the supervisor mailbox has no worker to restart")
        if resolved.agent.state.is_terminal:  # a running agent is told to be killed first, below
            self.agents.check_launchable(resolved.agent.cli)
        now = utc_now()
        old = await self.store.agents.transition(
            resolved.id, TERMINAL_AGENT_STATES,
            AgentPatch(state=AgentState.IDLE, rounds_completed=0, last_heartbeat=now, last_active_at=now),
        )
        if old is None:
            current = await self.store.agents.get(resolved.id)
            if current is None:
                raise AgentNotFound(ref)
            raise Conflict(
                f"agent '{current.name}' is {current.state.rest_name}; only a Stopped, Error or Cold agent "
                "can be restarted (kill it first)"
            )
        await self.store.agents.clear_stop(resolved.id)
        await self.store.agents.add_activity(resolved.id, "🔄 Restarted")
        agent = await self.store.agents.get(resolved.id) or resolved.agent
        await self.agents.launch(agent)
        return agent
