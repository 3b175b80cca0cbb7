"""The worker loop: ``Starting → Idle ⇄ Working``, ending ``Stopped`` (contract §7, reference §10.2).

One unit of work at a time, in priority order (leftovers, urgent, inbox, shared queue). Idle workers
block on Redis (the queue backend's posted reads); control (stop flag, pause, prune, SIGTERM) is checked
between short waits and during CLI runs. A Redis outage never ends the worker: it backs off and retries,
and since taken work stays recorded as taken until it is done, nothing is lost.

Fixes over upstream: nothing is taken destructively (GAP 21), urgent mail is FIFO (GAP 22), the
heartbeat runs during long CLI runs (GAP 25), a pruned agent's worker exits (GAP 26), shared work is
taken without an explicit claim (GAP 27), non-task messages neither run the CLI nor reset the idle
timer (GAP 28), the docket stream is used in streams mode (GAP 33), restarts reuse the record (GAP 38).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
from datetime import timedelta
from typing import Awaitable, Callable, TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from townhall.config import Town
from townhall.domain import (
    AgentState,
    Message,
    QueryBody,
    ShutdownBody,
    StatusRequestBody,
    StatusResponseBody,
    TaskAssignBody,
    TaskBody,
    utc_now,
)
from townhall.domain_errors import Conflict, DomainError, TaskNotFound
from townhall.queues import Delivery, QueueConsumer
from townhall.runtime import Runtime
from townhall.services.town import TownServices
from townhall.store import AgentPatch
from townhall.store.processing import Source
from townhall.worker.identity import IdentityError, Liveness, register
from townhall.worker.runner import CliRun, build_prompt, preset_for

log = logging.getLogger("townhall.worker")
T = TypeVar("T")

EXIT_OK = 0
EXIT_STARTUP = 1
EXIT_ALREADY_RUNNING = 3

#: How often an idle or paused worker looks at its control state (stop flag, pause, prune, signals).
CONTROL_SECS = 1.0
#: On SIGTERM a running CLI gets this long to finish before its task is handed back.
TERM_GRACE_SECS = 3.0
BACKOFF_MAX_SECS = 5.0
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
WORKABLE = (AgentState.STARTING, AgentState.IDLE, AgentState.WORKING)


class _GiveUp(Exception):
    """Terminated while Redis was unreachable."""


class Stop(str, enum.Enum):
    """Why the loop ends; every reason exits 0."""

    REQUESTED = "stop requested"
    PRUNED = "agent record removed"
    SIGNAL = "terminated by signal"
    IDLE = "idle timeout"
    SHUTDOWN = "shutdown message"
    REPLACED = "another worker took over this agent"


async def run_worker(runtime: Runtime, name: str, agent_id: str | None = None, cli: str | None = None) -> int:
    """Run the worker for agent ``name`` (record ``agent_id`` if given) until it stops; the exit code.
    ``runtime`` is a :attr:`Role.WORKER` runtime (it has the client for blocking reads)."""
    if runtime.blocking is None:
        raise ValueError("a worker needs a Role.WORKER runtime")
    worker = Worker(runtime.town, runtime.services, runtime.blocking, name=name, agent_id=agent_id, cli=cli)
    return await worker.run()


class Worker:
    def __init__(self, town: Town, services: TownServices, blocking: aioredis.Redis, *, name: str,
                 agent_id: str | None = None, cli: str | None = None) -> None:
        self.town = town
        self.services = services
        self.store = services.store
        self.blocking = blocking
        self.name = name
        self.requested_id = agent_id
        self.cli = cli
        cfg = town.config.agent
        self.heartbeat_secs = float(cfg.heartbeat_secs)
        self.idle_timeout = float(cfg.idle_timeout_secs)
        self.liveness = Liveness(timedelta(seconds=max(3 * cfg.heartbeat_secs, 5)))
        self.agent_id = ""
        self.queue: QueueConsumer | None = None
        self.current: Delivery | None = None
        self._term = asyncio.Event()
        self._stopping = asyncio.Event()
        self._replaced = False
        self._shutdown = False
        self._idle_since = 0.0

    # ---- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._term.set)
        try:
            startup = await self._persist(self._start)
            if startup is not None:
                return startup
            assert self.queue is not None
            reason = await self._loop()
            await self._persist(lambda: self._finish(reason))
            return EXIT_OK
        except IdentityError as exc:
            log.error("%s", exc)
            return exc.exit_code
        except DomainError as exc:
            log.error("cannot register agent %s: %s", self.name, exc)
            return EXIT_STARTUP
        except _GiveUp:
            log.warning("terminated while Redis is unreachable; unfinished work will be delivered again")
            return EXIT_OK
        finally:
            if self.queue is not None:
                await self.queue.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def _start(self) -> int | None:
        identity = await register(self.services, self.name, self.requested_id, self.cli,
                                  ambiguous_exit=EXIT_ALREADY_RUNNING)
        agent = identity.agent
        self.agent_id = agent.id
        ok, holder = await self.store.liveness.acquire(agent.id, self.liveness.value, self.liveness.ttl_ms)
        if not ok and self.liveness.holder_is_dead_here(holder):
            ok, holder = await self.store.liveness.acquire(agent.id, self.liveness.value, self.liveness.ttl_ms,
                                                           takeover=holder)
        if not ok:
            raise IdentityError(f"agent {agent.name} ({agent.id}) is already served by worker {holder}",
                                exit_code=EXIT_ALREADY_RUNNING)
        if identity.launched and await self.store.agents.stop_requested(agent.id):
            log.info("agent %s was stopped before its worker started", agent.name)
            await self.store.agents.clear_stop(agent.id)
            await self.store.agents.set_state(agent.id, AgentState.STOPPED)
            await self.store.liveness.release(agent.id, self.liveness.value)
            return EXIT_OK
        now = utc_now()
        await self.store.agents.update(agent.id, AgentPatch(
            state=AgentState.PAUSED if agent.state is AgentState.PAUSED else AgentState.IDLE,
            last_heartbeat=now, last_active_at=now,
        ))
        await self._clear_stale_current_task()
        await self.store.agents.add_activity(agent.id, "🚀 Worker started")
        self.queue = self.services.queue.consumer(
            agent.id, blocking=self.blocking,
            visibility_timeout_secs=self.town.config.agent.visibility_timeout_secs,
        )
        self._idle_since = asyncio.get_running_loop().time()
        log.info("worker %s (%s) started, queue %s", agent.name, agent.id, self.services.queue.name)
        return None

    async def _finish(self, reason: Stop) -> None:
        log.info("worker %s stopping: %s", self.name, reason.value)
        if reason is not Stop.PRUNED and reason is not Stop.REPLACED:
            if reason is Stop.IDLE:
                await self.store.agents.set_state(self.agent_id, AgentState.DRAINING)
                await self.store.agents.add_activity(
                    self.agent_id, f"🔻 Idle timeout reached after {int(self.idle_timeout)}s; draining and stopping")
            await self.store.agents.update(self.agent_id, AgentPatch(state=AgentState.STOPPED,
                                                                     last_heartbeat=utc_now()))
            await self.store.agents.clear_stop(self.agent_id)
            await self.store.agents.add_activity(self.agent_id, f"🛑 Stopped ({reason.value})")
        if reason is not Stop.REPLACED:
            await self.store.liveness.release(self.agent_id, self.liveness.value)

    async def _loop(self) -> Stop:
        heartbeat = asyncio.create_task(self._heartbeat_forever(), name="heartbeat")
        backoff = 0.2
        try:
            while True:
                try:
                    reason = await self._step()
                    backoff = 0.2
                except REDIS_ERRORS as exc:
                    log.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                    if self.queue is not None:
                        await self.queue.close()
                    if await self._term_within(backoff):
                        return Stop.SIGNAL
                    backoff = min(backoff * 2, BACKOFF_MAX_SECS)
                    continue
                if reason is not None:
                    return reason
        finally:
            # Not cancel(): a cancellation landing inside a redis-py call can be swallowed, and the
            # task would then never end. The heartbeat checks this event instead.
            self._stopping.set()
            await asyncio.wait([heartbeat], timeout=5)
            heartbeat.cancel()

    async def _step(self) -> Stop | None:
        assert self.queue is not None
        reason, paused = await self._control()
        if reason is not None:
            return reason
        if paused:
            await self._term_within(CONTROL_SECS)
            return None
        delivery = await self.queue.take()
        if delivery is None:
            loop = asyncio.get_running_loop()
            idle_for = loop.time() - self._idle_since
            if self.idle_timeout > 0 and idle_for >= self.idle_timeout:
                return Stop.IDLE
            wait = CONTROL_SECS if self.idle_timeout <= 0 else min(CONTROL_SECS, self.idle_timeout - idle_for)
            delivery = await self.queue.wait(max(wait, 0.05))
            if delivery is None:
                return None
        return await self._handle(delivery)

    async def _control(self) -> tuple[Stop | None, bool]:
        """``(reason to stop, paused)`` from signals, the stop flag and the record."""
        if self._term.is_set():
            return Stop.SIGNAL, False
        if self._replaced:
            return Stop.REPLACED, False
        if self._shutdown:
            return Stop.SHUTDOWN, False
        agent = await self.store.agents.get(self.agent_id)
        if agent is None:
            return Stop.PRUNED, False
        if await self.store.agents.stop_requested(self.agent_id) or agent.state.is_terminal:
            return Stop.REQUESTED, False
        return None, agent.state is AgentState.PAUSED

    # ---- one unit of work ---------------------------------------------------------------------
    async def _handle(self, delivery: Delivery) -> Stop | None:
        assert self.queue is not None
        body = delivery.message.body if delivery.message else None
        task_id: str | None = None
        if isinstance(body, TaskAssignBody):
            task = await self.store.tasks.get(body.task_id)
            moved = task is not None and task.assigned_to not in (None, self.agent_id)
            if task is None or task.state.is_terminal or (moved and delivery.source is not Source.SHARED):
                log.info("skipping task %s: %s", body.task_id,
                         "gone" if task is None else ("finished" if task.state.is_terminal else "reassigned"))
                await self.queue.done(delivery)
                return None
            task_id, description = task.id, task.description
        elif isinstance(body, TaskBody):
            description = body.description
        elif isinstance(body, QueryBody):
            description = body.question
        else:
            # Not work: consumed without running the CLI, and the idle timer keeps running (GAP 28).
            if isinstance(body, ShutdownBody):
                self._shutdown = True
            elif isinstance(body, StatusRequestBody) and delivery.message is not None:
                await self._answer_status(delivery.message)
            await self.queue.done(delivery)
            return None
        return await self._run(delivery, task_id, description)

    async def _run(self, delivery: Delivery, task_id: str | None, description: str) -> Stop | None:
        assert self.queue is not None
        now = utc_now()
        before = await self.store.agents.transition(
            self.agent_id, WORKABLE, AgentPatch(state=AgentState.WORKING, last_active_at=now, last_heartbeat=now))
        if before is None:  # stopped, paused or pruned meanwhile: not ours to run now
            await self._hand_back(delivery, task_id, started=False)
            return None
        if task_id:
            try:
                await self.services.tasks.start(task_id, self.agent_id)
            except (Conflict, TaskNotFound):
                await self.queue.done(delivery)  # finished by someone else meanwhile
                await self._become_idle(worked=False)
                return None
        agent = await self.store.agents.get(self.agent_id)
        round_no = (agent.rounds_completed if agent else 0) + 1
        try:
            preset = preset_for(self.town, agent.cli if agent else (self.cli or ""))
        except LookupError as exc:
            await self._finish_task(delivery, task_id, 127, str(exc), round_no)
            return None
        log_path = self.town.state_dir / "logs" / f"{self.name}_round_{round_no}.log"
        self.current = delivery
        try:
            run = await CliRun.start(self.town, preset, agent_id=self.agent_id, agent_name=self.name,
                                     prompt=build_prompt(self.name, description, task_id), log_path=log_path)
        except OSError as exc:
            self.current = None
            await self._finish_task(delivery, task_id, 127, f"could not start the CLI: {exc}", round_no)
            return None
        try:
            status, reason = await self._watch(run)
        finally:
            self.current = None
        if status is None:
            await run.kill()
            await self._persist(lambda: self._hand_back(delivery, task_id, started=True))
            await self.store.agents.add_activity(self.agent_id, f"Round {round_no}: ↩️ handed back ({reason})")
            return reason
        await self._persist(lambda: self._finish_task(delivery, task_id, status, run.output_tail(), round_no))
        return reason

    async def _watch(self, run: CliRun) -> tuple[int | None, Stop | None]:
        """Wait for the CLI, checking control meanwhile. ``(status, None)`` when it ended by itself;
        ``(None, reason)`` when it must be stopped; ``(status, reason)`` if it finished in its grace."""
        while True:
            status = await run.wait(CONTROL_SECS)
            if status is not None:
                return status, None
            try:
                reason, _ = await self._control()
            except REDIS_ERRORS:
                continue  # keep working through an outage; the result is written when Redis is back
            if reason is None:
                continue
            if reason is Stop.SIGNAL or reason is Stop.SHUTDOWN:
                status = await run.wait(TERM_GRACE_SECS)
                if status is not None:
                    return status, reason
            return None, reason

    async def _finish_task(self, delivery: Delivery, task_id: str | None, status: int, output: str,
                           round_no: int) -> None:
        assert self.queue is not None
        if task_id:
            if status == 0:
                await self.services.tasks.complete(task_id, output or "(no output)", agent_id=self.agent_id)
            else:
                await self.services.tasks.fail(task_id, f"exit status {status}\n{output}".strip(),
                                               agent_id=self.agent_id)
        # Acknowledge only after the task's outcome is written: a crash in between redelivers it, and
        # the redelivery sees a finished task and skips it.
        await self.queue.done(delivery)
        line = "✅ completed" if status == 0 else f"⚠️ CLI error (exit {status})"
        await self.store.agents.add_activity(self.agent_id, f"Round {round_no}: {line}")
        await self.store.agents.update(self.agent_id, AgentPatch(rounds_completed=round_no))
        await self._become_idle(worked=True)

    async def _become_idle(self, *, worked: bool) -> None:
        now = utc_now()
        await self.store.agents.transition(
            self.agent_id, [AgentState.WORKING, AgentState.STARTING],
            AgentPatch(state=AgentState.IDLE, last_active_at=now, last_heartbeat=now))
        if worked:
            self._idle_since = asyncio.get_running_loop().time()

    async def _hand_back(self, delivery: Delivery, task_id: str | None, *, started: bool) -> None:
        assert self.queue is not None
        if task_id and started and delivery.source is not Source.SHARED:
            try:
                await self.services.tasks.release(task_id)
            except DomainError:
                pass  # finished or gone meanwhile
            await self.store.agents.clear_current_task(self.agent_id, task_id)
        elif task_id and started:
            await self.store.agents.clear_current_task(self.agent_id, task_id)
        await self.queue.give_back(delivery)

    async def _answer_status(self, request: Message) -> None:
        agent = await self.store.agents.get(self.agent_id)
        state = agent.state.rest_name if agent else "Stopped"
        reply = Message.new(self.agent_id, request.from_,
                            StatusResponseBody(state=state, current_task=agent.current_task if agent else None),
                            correlation_id=request.id)
        await self.services.messages.deliver(reply)

    async def _clear_stale_current_task(self) -> None:
        agent = await self.store.agents.get(self.agent_id)
        if agent is None or not agent.current_task:
            return
        task = await self.store.tasks.get(agent.current_task)
        if task is None or task.state.is_terminal:
            await self.store.agents.clear_current_task(self.agent_id, agent.current_task)

    # ---- heartbeat, retries, signals ------------------------------------------------------------
    async def _heartbeat_forever(self) -> None:
        while not await self._event_within(self._stopping, self.heartbeat_secs):
            try:
                await self._heartbeat()
            except REDIS_ERRORS as exc:
                log.debug("heartbeat skipped: %s", exc)

    async def _heartbeat(self) -> None:
        if not await self.store.liveness.refresh(self.agent_id, self.liveness.value, self.liveness.ttl_ms):
            log.warning("another worker took over agent %s", self.agent_id)
            self._replaced = True
            return
        await self.store.agents.update(self.agent_id, AgentPatch(last_heartbeat=utc_now()))
        current = self.current
        if current is not None and self.queue is not None:
            await self.queue.keep_alive(current)

    async def _persist(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run a Redis action until it succeeds: results must survive an outage. A signal during the
        outage ends the wait (:class:`_GiveUp`); what was taken is then redelivered (at least once)."""
        backoff = 0.2
        while True:
            try:
                return await action()
            except REDIS_ERRORS as exc:
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                if await self._term_within(backoff):
                    raise _GiveUp() from exc
                backoff = min(backoff * 2, BACKOFF_MAX_SECS)

    async def _term_within(self, seconds: float) -> bool:
        return await self._event_within(self._term, seconds)

    @staticmethod
    async def _event_within(event: asyncio.Event, seconds: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True
