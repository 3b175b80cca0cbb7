"""The protocol a queue backend implements: how shared (backlog) work reaches workers.

Services call the first group of methods; workers call :meth:`QueueBackend.consumer` and take their
work through the :class:`QueueConsumer` it returns. Both backends keep the upstream backlog list ``tt:{town}:backlog`` as
the catalogue of queued shared work, so backlog routes and the original ``tt`` keep working in either
mode. Both deliver **at least once**: whatever a worker takes stays recorded as taken (its processing
list, or the docket group's pending entries) until it is done or handed back, so a worker killed at
any moment loses nothing; a task may then run twice, and finishing it twice is harmless.
"""

from __future__ import annotations

from typing import Protocol

import msgspec
import redis.asyncio as aioredis

from townhall.domain import SUPERVISOR_ID, Message, Task, TaskAssignBody
from townhall.keys import DOCKET_GROUP as SHARED_GROUP
from townhall.store.attempts import AttemptOutcome
from townhall.store.processing import Source


class QueueDepth(msgspec.Struct, frozen=True):
    """What ``/api/scaling`` needs from the shared queue."""

    unread: int
    in_flight: int


class Delivery(msgspec.Struct, frozen=True):
    """One unit of work a worker took. ``raw`` is the processing-list entry (message JSON; empty for
    docket entries), ``entry_id`` the docket entry of streams shared work."""

    source: Source
    message: Message | None
    raw: str = ""
    task_id: str | None = None
    entry_id: str | None = None


def task_assign_message(task_id: str, agent_id: str) -> Message:
    """The message that hands task ``task_id`` to agent ``agent_id`` (from the supervisor, priority
    normal): what a direct assignment puts in the inbox and what a worker takes shared work as."""
    return Message.new(SUPERVISOR_ID, agent_id, TaskAssignBody(task_id=task_id))


def shared_assign_message(task_id: str) -> Message:
    """The message a worker holds shared work as, addressed to the shared group rather than to one
    agent: whoever puts a dead worker's work back can tell it from a direct assignment."""
    return Message.new(SUPERVISOR_ID, SHARED_GROUP, TaskAssignBody(task_id=task_id))


def is_shared_assignment(message: Message | None) -> bool:
    return message is not None and message.to == SHARED_GROUP and isinstance(message.body, TaskAssignBody)


class QueueConsumer(Protocol):
    """A worker's side of the queue, for one agent: it consumes the agent's mailbox and shared work.
    Priority: what this agent already held (a previous life's leftovers), then urgent mail, then its
    inbox, then shared work."""

    async def take(self) -> Delivery | None:
        """The next unit of work without waiting, or ``None``."""
        ...

    async def wait(self, timeout: float) -> Delivery | None:
        """Wait up to ``timeout`` seconds for work to arrive (blocking reads on Redis, never a polling
        sleep) and take it. ``None`` on timeout; the blocking reads stay posted for the next call."""
        ...

    async def done(self, delivery: Delivery) -> None:
        """The work is over (finished, failed or skipped): forget it for good."""
        ...

    async def give_back(self, delivery: Delivery) -> None:
        """Unfinished (stop, shutdown): make it available again — mailbox work to the front of this
        agent's mailbox, shared work back to the shared queue for any worker."""
        ...

    async def retry_or_fail(self, delivery: Delivery, error: str, reason: str, max_attempts: int) -> AttemptOutcome:
        """A run of shared work failed (``error``, this attempt's ``reason`` line): the task back on the
        shared queue (at its end) while it has had fewer than ``max_attempts`` runs, else ``failed``
        with every attempt's reason; the delivery is over either way."""
        ...

    async def keep_alive(self, delivery: Delivery) -> None:
        """A long run is still going: keep the work from being taken over as abandoned."""
        ...

    async def close(self) -> None:
        """Cancel posted blocking reads (whatever they took meanwhile is a leftover for next time)."""
        ...


class QueueBackend(Protocol):
    name: str

    # ---- used by services (REST, CLI) -----------------------------------------------------
    async def add_task(self, task: Task) -> None:
        """Write a new ``pending`` task and make it shared work, the record and the backlog entry in
        one atomic step (backlog add)."""
        ...

    async def enqueue(self, task_id: str) -> bool:
        """Make an existing open task shared work again (reclaim, orphans): the record ``pending`` (no
        assignee) and first in the backlog in one atomic step, then announced to workers. ``False`` (and
        nothing changed) if the task is finished or gone."""
        ...

    async def announce(self, task_id: str) -> None:
        """Tell workers that a task already ``pending`` in the backlog is shared work (retry writes the
        record and the backlog entry in one step, then calls this): lists wake blocked workers, streams
        add a docket entry. A task cancelled while queued needs nothing here: its backlog entry went
        with the cancel, and a docket entry still announcing it is stale, which the first worker to read
        it acknowledges and skips (deleting it with ``XDEL`` would make the group's ``lag``, which the
        scaling signal reads, unknown)."""
        ...

    async def withdraw(self, task_id: str) -> bool:
        """Take an undelivered task back out (backlog delete). ``False`` if it was not queued."""
        ...

    async def measure(self) -> QueueDepth:
        """Unread and in-flight shared work, without scanning finished tasks."""
        ...

    async def requeue_dead(self, agent_id: str, *, pool: bool = False) -> int:
        """Put back what a dead worker of ``agent_id`` had taken, where a live worker will get it:
        shared work to the shared queue at once (lists: the backlog; streams: a fresh docket entry);
        direct work to the front of its inbox (for its next life or ``reclaim``), or, for a pool
        agent (``pool``), to the shared queue too. Returns the number of units put back."""
        ...

    async def sweep(self, visibility_timeout_secs: int) -> int:
        """Periodic upkeep (townhall): requeue the taken work of workers whose liveness key lapsed
        (as :meth:`requeue_dead`) and, streams, trim acknowledged docket entries. Returns the number
        of units put back."""
        ...

    # ---- used by workers -------------------------------------------------------------------
    def consumer(self, agent_id: str, *, blocking: aioredis.Redis, visibility_timeout_secs: int) -> QueueConsumer:
        """The consumer for ``agent_id``'s worker. ``blocking`` is a client whose ``socket_timeout`` is
        ``None`` (blocking reads hold a connection each)."""
        ...
