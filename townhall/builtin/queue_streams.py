"""Queue backend ``streams`` (``use_streams = true``): shared work through the docket stream.

The upstream backlog list stays the catalogue of queued shared work (backlog listing, claim and the
original ``tt`` keep working); each backlog add is also announced on ``tt:{town}:docket:tasks`` and
workers take it with ``XREADGROUP`` in group ``workers``. A task taken out of the backlog by other means
(claim, assign-all, delete) leaves a stale entry that the worker reading it acknowledges and skips.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

import redis.asyncio as aioredis

from townhall import hookimpl
from townhall.builtin.queue_lists import POST_SECS, MailboxConsumer, requeue_processing, sweep_processing
from townhall.domain import Task
from townhall.queues import Delivery, QueueDepth, task_assign_message
from townhall.registry import QueueBackendSpec
from townhall.store import AttemptOutcome, DocketEntry, TownStore
from townhall.store.processing import Source

log = logging.getLogger(__name__)


class StreamsConsumer(MailboxConsumer):
    """Shared work through ``XREADGROUP`` (consumer = agent id); ``XACK`` only once the work is over;
    entries idle longer than the visibility timeout (their consumer died) are taken over."""

    def __init__(self, store: TownStore, agent_id: str, blocking: aioredis.Redis, visibility_ms: int) -> None:
        super().__init__(store, agent_id, blocking)
        self.visibility_ms = visibility_ms

    async def take(self) -> Delivery | None:
        return (
            await self._take_leftover()
            or await self._take_own_pending()
            or await self._take_mailbox()
            or await self._take_abandoned()
            or await self._take_shared()
        )

    async def _take_own_pending(self) -> Delivery | None:
        # Between units of work nothing of ours is pending: these are a previous life's entries, or
        # one a cancelled blocking read was given.
        for entry in await self.store.docket.read_own(self.agent_id):
            if delivery := await self._accept(entry):
                return delivery
        return None

    async def _take_abandoned(self) -> Delivery | None:
        for entry in await self.store.docket.claim_idle(self.agent_id, self.visibility_ms, count=5):
            if delivery := await self._accept(entry):
                log.info("took over docket entry %s (task %s) from %s", entry.entry_id, entry.task_id,
                         entry.previous_owner)
                return delivery
        return None

    async def _take_shared(self) -> Delivery | None:
        for entry in await self.store.docket.read_new(self.agent_id, block_ms=None):
            if delivery := await self._accept(entry):
                return delivery
        return None

    async def _accept(self, entry: DocketEntry) -> Delivery | None:
        """The entry's task becomes assigned to this agent, or the entry is stale and retired."""
        if entry.task_id and await self.store.processing.shared_take(entry.task_id, self.agent_id,
                                                                      entry.previous_owner):
            return Delivery(source=Source.SHARED, message=task_assign_message(entry.task_id, self.agent_id),
                            task_id=entry.task_id, entry_id=entry.entry_id)
        await self.store.docket.ack(entry.entry_id)
        return None

    def _watchers(self) -> dict[str, Callable[[], Awaitable[Delivery | None]]]:
        watchers = super()._watchers()

        async def shared() -> Delivery | None:
            entries = await self.store.docket.read_new(self.agent_id, block_ms=POST_SECS * 1000,
                                                       client=self.blocking)
            for entry in entries:
                if delivery := await self._accept(entry):
                    return delivery
            return None

        watchers["shared"] = shared
        return watchers

    async def done(self, delivery: Delivery) -> None:
        if delivery.entry_id:
            await self.store.docket.ack(delivery.entry_id)
        else:
            await super().done(delivery)

    async def keep_alive(self, delivery: Delivery) -> None:
        if delivery.entry_id:
            await self.store.docket.touch(self.agent_id, delivery.entry_id)

    async def retry_or_fail(self, delivery: Delivery, error: str, reason: str, max_attempts: int) -> AttemptOutcome:
        if not delivery.entry_id or not delivery.task_id:
            raise ValueError("only shared work is retried")
        outcome, _ = await self.store.attempts.failed(delivery.task_id, error, reason, agent_id=self.agent_id,
                                                      max_attempts=max_attempts)
        if outcome is AttemptOutcome.REQUEUED:  # announced again before the old entry goes: never lost
            task = await self.store.tasks.get(delivery.task_id)
            await self.store.docket.add(delivery.task_id, task.description if task else "")
        await self.store.docket.ack(delivery.entry_id)
        return outcome

    async def give_back(self, delivery: Delivery) -> None:
        if delivery.entry_id and delivery.task_id:
            await reannounce(self.store, delivery.task_id, delivery.entry_id)
        else:
            await super().give_back(delivery)


async def reannounce(store: TownStore, task_id: str, entry_id: str) -> bool:
    """Shared work handed back: the task pending and first in the backlog again, a fresh docket entry
    for it, then the old entry acknowledged (in that order: a crash duplicates, never loses)."""
    returned = bool(task_id) and await store.processing.shared_return(task_id)
    if returned:
        task = await store.tasks.get(task_id)
        await store.docket.add(task_id, task.description if task else "")
    await store.docket.ack(entry_id)
    return returned


class StreamsQueue:
    name = "streams"

    def __init__(self, store: TownStore) -> None:
        self.store = store
        self._group_ready = False

    async def add_task(self, task: Task) -> None:
        # Record and catalogue in one step, then the stream entry: a crash in between leaves a listed
        # task, never a stream entry pointing at a task the backlog does not know.
        await self.store.tasks.create_and_push(task, [(self.store.keys.backlog, task.id)])
        await self._announce(task.id, task.description)

    async def enqueue(self, task_id: str) -> bool:
        if not await self.store.processing.shared_return(task_id):
            return False
        task = await self.store.tasks.get(task_id)
        await self._announce(task_id, task.description if task else "")
        return True

    async def _announce(self, task_id: str, description: str) -> None:
        if not self._group_ready:
            await self.store.docket.ensure_group()
            self._group_ready = True
        await self.store.docket.add(task_id, description)

    async def announce(self, task_id: str) -> None:
        task = await self.store.tasks.get(task_id)
        await self._announce(task_id, task.description if task else "")

    async def withdraw(self, task_id: str) -> bool:
        return await self.store.backlog.remove(task_id)

    async def measure(self) -> QueueDepth:
        depth = await self.store.docket.depth()
        return QueueDepth(unread=depth.unread, in_flight=depth.pending)

    async def requeue_dead(self, agent_id: str, *, pool: bool = False) -> int:
        async def to_shared(task_id: str, raw: str) -> bool:
            if not await self.store.processing.shared_return(task_id, agent_id, raw):
                return False
            task = await self.store.tasks.get(task_id)
            await self._announce(task_id, task.description if task else "")
            return True

        count = await requeue_processing(self.store, agent_id, to_shared, pool=pool)
        while entries := await self.store.docket.owned(agent_id):
            for entry in entries:
                count += await reannounce(self.store, entry.task_id, entry.entry_id)
        # Only now that it holds nothing: deleting a consumer drops its pending entries.
        await self.store.docket.forget_consumer(agent_id)
        return count

    async def sweep(self, visibility_timeout_secs: int) -> int:
        # Abandoned docket entries are taken over by live workers (visibility timeout); with none
        # alive they stay counted as in flight, so an autoscaler starts one.
        restored = await sweep_processing(self.store, lambda agent_id, pool: self.requeue_dead(agent_id, pool=pool))
        await self.store.docket.trim_delivered()
        return restored

    def consumer(self, agent_id: str, *, blocking: aioredis.Redis, visibility_timeout_secs: int) -> StreamsConsumer:
        return StreamsConsumer(self.store, agent_id, blocking, visibility_timeout_secs * 1000)


@hookimpl
def townhall_register_queue_backends(register: Callable[[QueueBackendSpec], None]) -> None:
    register(QueueBackendSpec(name="streams", factory=StreamsQueue,
                              summary="docket stream + consumer group `workers` (at-least-once)"))
