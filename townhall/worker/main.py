"""The worker loop: ``Starting → Idle ⇄ Working``, ending ``Stopped`` (contract §7, reference §10.2).

One unit of work at a time, in priority order (leftovers, urgent, inbox, shared queue). Idle workers
block on Redis (the queue backend's posted reads); control (stop flag, pause, prune, SIGTERM) is checked
between short waits and during CLI runs. A Redis outage never ends the worker: it backs off and retries,
and since taken work stays recorded as taken until it is done, nothing is lost.

Fixes over upstream: nothing is taken destructively (GAP 21), urgent mail is FIFO (GAP 22), the
heartbeat runs during long CLI runs (GAP 25), a pruned agent's worker exits (GAP 26), shared work is
taken without an explicit claim (GAP 27), non-task messages neither run the CLI nor reset the idle
timer (GAP 28), the docket stream is used in streams mode (GAP 33), restarts reuse the record (GAP 38).
Beyond upstream (issue 11): a per-task time limit, retries of shared work, each run its own log, an
orphaned CLI of a dead predecessor killed before work is taken, and an agent whose CLI cannot run
(exit 126/127, or the failure breaker) put in ``Error`` with its work handed back untouched.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
from datetime import timedelta

import msgspec

from townhall.config import Town
from townhall.domain import Agent, QueryBody, ShutdownBody, StatusRequestBody, TaskAssignBody, TaskBody
from townhall.domain_errors import DomainError
from townhall.queues import Delivery, QueueConsumer
from townhall.readiness import notify_ready
from townhall.runtime import Runtime
from townhall.services.lifecycle import NotBegun, Pool, Refusal, Round, Skip, Standing, StartRefused
from townhall.services.town import TownServices
from townhall.store.processing import Source
from townhall.worker.attempts import Attempts
from townhall.worker.breaker import FailureBreaker
from townhall.worker.guard import BACKOFF_MAX_SECS, REDIS_ERRORS, GiveUp, Guard, event_within
from townhall.worker.liveness import Liveness
from townhall.worker.runner import CliRun, build_prompt, first_line, kill_orphaned_cli, preset_for, run_log_path

log = logging.getLogger("townhall.worker")

EXIT_OK = 0
EXIT_STARTUP = 1
EXIT_ALREADY_RUNNING = 3
#: The agent's CLI cannot run (it is left in ``Error``).
EXIT_BROKEN = 4
#: ``sh``'s exit status when the program is not executable (126) or not found (127).
BROKEN_STATUSES = (126, 127)

#: How often an idle or paused worker looks at its control state (stop flag, pause, prune, signals).
CONTROL_SECS = 1.0
#: On SIGTERM a running CLI gets this long to finish before its task is handed back.
TERM_GRACE_SECS = 3.0


class Stop(enum.StrEnum):
    """Why the loop ends; every reason exits 0."""

    REQUESTED = "stop requested"
    PRUNED = "agent record removed"
    SIGNAL = "terminated by signal"
    IDLE = "idle timeout"
    SHUTDOWN = "shutdown message"
    REPLACED = "another worker took over this agent"
    BROKEN = "the agent's CLI cannot run"


class Ended(msgspec.Struct, frozen=True):
    """How a watched CLI run ended: its exit status, why it must be stopped, time out, or cancelled."""

    status: int | None = None
    stop: Stop | None = None
    timed_out: bool = False
    cancelled: bool = False


async def run_worker(runtime: Runtime, name: str | Pool, agent_id: str | None = None, cli: str | None = None) -> int:
    """Run the worker for agent ``name`` (record ``agent_id`` if given; a :class:`Pool`: a new pool
    agent) until it stops; the exit code. ``runtime`` is a :attr:`Role.WORKER` runtime."""
    if runtime.blocking is None:
        raise ValueError("a worker needs a Role.WORKER runtime")
    services, config = runtime.services, runtime.town.config.agent
    liveness = Liveness(timedelta(seconds=max(3 * config.heartbeat_secs, 5)))
    guard = Guard()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, guard.term.set)
    try:
        agent = await guard.persist(lambda: services.lifecycle.start(name, agent_id, cli, liveness))
        if agent is None:
            log.info("agent %s was stopped before its worker started", name)
            return EXIT_OK
        await guard.persist(lambda: kill_orphaned_cli(services.lifecycle, liveness.host, agent.id))
        consumer = services.queue.consumer(agent.id, blocking=runtime.blocking,
                                           visibility_timeout_secs=config.visibility_timeout_secs)
        try:
            worker = Worker(runtime.town, services, consumer, guard, liveness, agent=agent, name=agent.name, cli=cli)
            log.info("worker %s (%s) started, queue %s", agent.name, agent.id, services.queue.name)
            notify_ready()
            reason = await worker.run()
            await guard.persist(lambda: worker.stop(reason))
        finally:
            await consumer.close()
        return EXIT_BROKEN if reason is Stop.BROKEN else EXIT_OK
    except StartRefused as exc:
        log.error("%s", exc)
        return EXIT_STARTUP if exc.refusal is Refusal.INVALID_ID else EXIT_ALREADY_RUNNING
    except DomainError as exc:
        log.error("cannot register agent %s: %s", name, exc)
        return EXIT_STARTUP
    except GiveUp:
        log.warning("terminated while Redis is unreachable; unfinished work will be delivered again")
        return EXIT_OK
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


class Worker:
    """The loop of one started agent: work from its queue consumer, the CLI run on it, the outcome
    recorded through the agent-lifecycle and task services."""

    def __init__(self, town: Town, services: TownServices, consumer: QueueConsumer, guard: Guard,
                 liveness: Liveness, *, agent: Agent, name: str, cli: str | None) -> None:
        self.town = town
        self.lifecycle = services.lifecycle
        self.actions = services.actions
        self.consumer = consumer
        self.guard = guard
        self.liveness = liveness
        self.agent_id = agent.id
        self.name = name
        self.cli = cli
        cfg = town.config.agent
        self.heartbeat_secs = float(cfg.heartbeat_secs)
        self.idle_timeout = float(cfg.idle_timeout_secs)
        self.default_timeout = cfg.task_timeout_secs
        self.attempts = Attempts(services.lifecycle, consumer, agent.id, cfg.max_attempts)
        self.breaker = FailureBreaker(cfg.failure_breaker, proven=agent.tasks_completed > 0)
        self.broken_reason = ""
        self.current: Delivery | None = None
        self._stopping = asyncio.Event()
        self._replaced = False
        self._shutdown = False
        self._idle_since = asyncio.get_running_loop().time()

    # ---- the loop -----------------------------------------------------------------------------
    async def run(self) -> Stop:
        heartbeat = asyncio.create_task(self._heartbeat_forever(), name="heartbeat")
        backoff = 0.2
        try:
            while True:
                try:
                    reason = await self._step()
                    backoff = 0.2
                except REDIS_ERRORS as exc:
                    log.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                    await self.consumer.close()
                    if await self.guard.term_within(backoff):
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

    async def stop(self, reason: Stop) -> None:
        """Record why the loop ended. A pruned agent has no record to write; a replaced one is
        another worker's now (its liveness key too)."""
        log.info("worker %s stopping: %s", self.name, reason.value)
        if reason is Stop.REPLACED:
            return
        if reason is Stop.PRUNED:
            await self.lifecycle.release(self.agent_id, self.liveness)
            return
        if reason is Stop.BROKEN:
            await self.lifecycle.broken(self.agent_id, self.liveness, self.broken_reason)
            return
        if reason is Stop.IDLE:
            await self.lifecycle.drain(self.agent_id, int(self.idle_timeout))
        await self.lifecycle.stop(self.agent_id, self.liveness, reason.value)

    async def _step(self) -> Stop | None:
        reason, paused = await self._control()
        if reason is not None:
            return reason
        if paused:
            await self.guard.term_within(CONTROL_SECS)
            return None
        delivery = await self.consumer.take()
        if delivery is None:
            loop = asyncio.get_running_loop()
            idle_for = loop.time() - self._idle_since
            if self.idle_timeout > 0 and idle_for >= self.idle_timeout:
                return Stop.IDLE
            wait = CONTROL_SECS if self.idle_timeout <= 0 else min(CONTROL_SECS, self.idle_timeout - idle_for)
            delivery = await self.consumer.wait(max(wait, 0.05))
            if delivery is None:
                return None
        return await self._handle(delivery)

    async def _control(self) -> tuple[Stop | None, bool]:
        """``(reason to stop, paused)`` from signals, the stop flag and the record."""
        if self.guard.term.is_set():
            return Stop.SIGNAL, False
        if self._replaced:
            return Stop.REPLACED, False
        if self._shutdown:
            return Stop.SHUTDOWN, False
        standing = await self.lifecycle.standing(self.agent_id)
        if standing is Standing.GONE:
            return Stop.PRUNED, False
        if standing is Standing.STOP:
            return Stop.REQUESTED, False
        return None, standing is Standing.PAUSED

    # ---- one unit of work ---------------------------------------------------------------------
    async def _handle(self, delivery: Delivery) -> Stop | None:
        body = delivery.message.body if delivery.message else None
        task_id: str | None = None
        if isinstance(body, TaskAssignBody):
            task = await self.lifecycle.assignment(self.agent_id, body.task_id,
                                                   shared=delivery.source is Source.SHARED)
            if isinstance(task, Skip):
                await self.lifecycle.skip(self.agent_id, body.task_id, task, delivery.raw)
                await self.consumer.done(delivery)
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
                await self.lifecycle.report_status(self.agent_id, delivery.message)
            await self.consumer.done(delivery)
            return None
        return await self._run(delivery, task_id, description)

    async def _run(self, delivery: Delivery, task_id: str | None, description: str) -> Stop | None:
        begun = await self.lifecycle.begin(self.agent_id, task_id, cli=self.cli or "")
        if begun is NotBegun.NOT_WORKABLE:  # stopped, paused or pruned meanwhile: not ours to run now
            await self._hand_back(delivery, task_id, started=False)
            return None
        if begun is NotBegun.TASK_FINISHED:
            await self.consumer.done(delivery)  # finished by someone else meanwhile
            await self.lifecycle.become_idle(self.agent_id)
            return None
        message_id = delivery.message.id if delivery.message else "unknown"
        what = f"task {task_id} attempt {begun.attempt}" if task_id else f"message {message_id}"
        if task_id and self.attempts.spent(delivery, task_id, begun):  # its last run died with its worker
            why = await self.guard.persist(lambda: self.attempts.fail_spent(delivery, task_id))
            log.warning("%s not run: %s", what, why)
            return None
        log.info("%s started (source %s)", what, delivery.source.value)
        try:
            preset = preset_for(self.town, begun.cli)
        except LookupError as exc:
            return await self._broken(delivery, task_id, begun, what, str(exc))
        run_name = f"{task_id}.{begun.attempt}" if task_id else f"message-{message_id}"
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.current = delivery
        try:
            run = await CliRun.start(self.town, preset, agent_id=self.agent_id, agent_name=self.name,
                                     task_id=task_id, prompt=build_prompt(self.name, description, task_id),
                                     log_path=run_log_path(self.town, self.name, run_name))
        except OSError as exc:
            self.current = None
            return await self._broken(delivery, task_id, begun, what, f"could not start the CLI: {exc}")
        group = f"{self.liveness.host}:{run.pgid}"
        try:
            await self.lifecycle.cli_started(self.agent_id, group)
            ended = await self._watch(run, self._time_limit(begun), task_id)
        finally:
            self.current = None
            await run.kill()  # the whole group: nothing of this run outlives it
            await self.guard.persist(lambda: self.lifecycle.cli_ended(self.agent_id, group))
        if ended.cancelled:  # the record says so already: the delivery is over, nothing to write
            log.info("%s cancelled: its CLI was stopped", what)
            return await self.guard.persist(lambda: self._cancelled(delivery, task_id, begun))
        output = run.output_tail()
        if ended.status is None and not ended.timed_out:
            why = ended.stop.value if ended.stop else "stopped"
            await self.guard.persist(lambda: self._hand_back(delivery, task_id, started=True))
            await self.lifecycle.handed_back(self.agent_id, begun.number, task_id, why)
            log.info("%s handed back: %s", what, why)
            return ended.stop
        if ended.status in BROKEN_STATUSES:
            return await self._broken(delivery, task_id, begun, what, f"CLI preset '{preset.name}' cannot run its "
                                      f"program (exit {ended.status}): {first_line(output)}")
        error = None
        if ended.timed_out:
            error = f"timed out after {self._time_limit(begun)} s"
        elif ended.status != 0:
            error = f"exit status {ended.status}"
            if self.breaker.failed(loop.time(), f"{ended.status}\n{output}", task_id or f"message {message_id}"):
                return await self._broken(delivery, task_id, begun, what,
                                          f"failure breaker tripped: {self.breaker.describe()} ({error})")
        if error is None:
            self.breaker.succeeded()
        state = await self.guard.persist(lambda: self._finish_task(delivery, task_id, error, output, begun))
        log.info("%s finished: %s, exit %s, %.1f s%s", what, state, ended.status, loop.time() - started,
                 f"; {error}: {first_line(output)}" if error else "")
        return ended.stop

    def _time_limit(self, begun: Round) -> int | None:
        limit = begun.timeout_secs if begun.timeout_secs is not None else self.default_timeout
        return limit or None

    async def _watch(self, run: CliRun, limit: int | None, task_id: str | None) -> Ended:
        """Wait for the CLI, checking control meanwhile: its exit status when it ended by itself (also
        within the grace of a SIGTERM), why it must be stopped, its time limit passed, or a cancel."""
        loop = asyncio.get_running_loop()
        deadline = None if limit is None else loop.time() + limit
        while True:
            step = CONTROL_SECS if deadline is None else max(min(CONTROL_SECS, deadline - loop.time()), 0.0)
            status = await run.wait(step)
            if status is not None:
                return Ended(status=status)
            if deadline is not None and loop.time() >= deadline:
                return Ended(timed_out=True)
            try:
                reason, _ = await self._control()
                if task_id and await self.actions.cancelled(task_id):
                    return Ended(cancelled=True)
            except REDIS_ERRORS:
                continue  # keep working through an outage; the result is written when Redis is back
            if reason is None:
                continue
            if reason is Stop.SIGNAL or reason is Stop.SHUTDOWN:
                status = await run.wait(TERM_GRACE_SECS)
                if status is not None:
                    return Ended(status=status, stop=reason)
            return Ended(stop=reason)

    async def _finish_task(self, delivery: Delivery, task_id: str | None, error: str | None, output: str,
                           begun: Round) -> str:
        state = await self.attempts.finish(delivery, task_id, error, output, begun)
        self._idle_since = asyncio.get_running_loop().time()
        return state

    async def _cancelled(self, delivery: Delivery, task_id: str | None, begun: Round) -> None:
        await self.consumer.done(delivery)
        await self.actions.run_cancelled(self.agent_id, begun.number, task_id or "", self.lifecycle)
        self._idle_since = asyncio.get_running_loop().time()

    async def _broken(self, delivery: Delivery, task_id: str | None, begun: Round, what: str, why: str) -> Stop:
        """The CLI cannot run: the work goes back where it came from, uncounted, and the worker stops
        with the agent in ``Error``."""
        self.broken_reason = why
        log.error("agent %s is broken: %s", self.name, why)
        await self.guard.persist(lambda: self._hand_back(delivery, task_id, started=True))
        await self.lifecycle.handed_back(self.agent_id, begun.number, task_id, why)
        log.info("%s handed back: %s", what, why)
        return Stop.BROKEN

    async def _hand_back(self, delivery: Delivery, task_id: str | None, *, started: bool) -> None:
        if task_id and started:
            await self.lifecycle.hand_back(self.agent_id, task_id, release=delivery.source is not Source.SHARED)
        await self.consumer.give_back(delivery)

    # ---- heartbeat ----------------------------------------------------------------------------
    async def _heartbeat_forever(self) -> None:
        while not await event_within(self._stopping, self.heartbeat_secs):
            try:
                await self._heartbeat()
            except REDIS_ERRORS as exc:
                log.debug("heartbeat skipped: %s", exc)

    async def _heartbeat(self) -> None:
        if not await self.lifecycle.heartbeat(self.agent_id, self.liveness):
            log.warning("another worker took over agent %s", self.agent_id)
            self._replaced = True
            return
        current = self.current
        if current is not None:
            await self.consumer.keep_alive(current)

