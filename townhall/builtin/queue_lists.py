"""Queue backend ``lists`` (default): shared work is the upstream backlog list.

Workers move everything they take into their processing list (``TownKeys.processing``) atomically and
remove it only when the work is over, so delivery is at least once (contract §7). Idle workers block on
their urgent list, their inbox (``BLMOVE`` straight into the processing list) and the shared wake list
``TownKeys.wake_shared``, to which every enqueue pushes a token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import redis.asyncio as aioredis

from townhall import hookimpl
from townhall.domain import Task, TaskAssignBody
from townhall.queues import Delivery, QueueDepth, is_shared_assignment, shared_assign_message
from townhall.registry import QueueBackendSpec
from townhall.store import AttemptOutcome, TownStore
from townhall.store.json_codec import encode_message, try_decode_message
from townhall.store.processing import Source

log = logging.getLogger(__name__)

#: Server-side block time of a posted read; it is simply posted again when it lapses.
POST_SECS = 30
#: Wake tokens beyond this many are dropped: a token is only a signal that the backlog changed.


def delivery_from(raw: str, source: Source) -> Delivery:
    message = try_decode_message(raw)
    body = message.body if message else None
    task_id = body.task_id if isinstance(body, TaskAssignBody) else None
    if source is Source.LEFTOVER and is_shared_assignment(message):
        source = Source.SHARED  # a previous life's shared work goes back to the shared queue
    return Delivery(source=source, message=message, raw=raw, task_id=task_id)


class MailboxConsumer:
    """The part both backends share: leftovers, urgent and inbox through the processing list, and the
    machinery of posted blocking reads. Subclasses add the shared queue."""

    def __init__(self, store: TownStore, agent_id: str, blocking: aioredis.Redis) -> None:
        self.store = store
        self.agent_id = agent_id
        self.blocking = blocking
        self._posted: dict[str, asyncio.Task[Delivery | None]] = {}

    # ---- taking without waiting -----------------------------------------------------------------
    async def take(self) -> Delivery | None:
        return await self._take_leftover() or await self._take_mailbox() or await self._take_shared()

    async def _take_leftover(self) -> Delivery | None:
        # Called only between units of work, so anything in the processing list is unowned: a previous
        # life's work, or what a cancelled blocking read moved in.
        entries = await self.store.processing.entries(self.agent_id)
        return delivery_from(entries[0], Source.LEFTOVER) if entries else None

    async def _take_mailbox(self) -> Delivery | None:
        taken = await self.store.processing.take_mailbox(self.agent_id)
        return delivery_from(taken.raw, taken.source) if taken else None

    async def _take_shared(self) -> Delivery | None:
        raise NotImplementedError

    # ---- waiting ----------------------------------------------------------------------------------
    def _watchers(self) -> dict[str, Callable[[], Awaitable[Delivery | None]]]:
        p, a, b = self.store.processing, self.agent_id, self.blocking

        async def urgent() -> Delivery | None:
            taken = await p.wait_mailbox(b, a, urgent=True, timeout=POST_SECS)
            return delivery_from(taken.raw, taken.source) if taken else None

        async def inbox() -> Delivery | None:
            taken = await p.wait_mailbox(b, a, urgent=False, timeout=POST_SECS)
            return delivery_from(taken.raw, taken.source) if taken else None

        return {"urgent": urgent, "inbox": inbox}

    async def wait(self, timeout: float) -> Delivery | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        watchers = self._watchers()
        while True:
            for name, watch in watchers.items():
                if name not in self._posted:
                    self._posted[name] = asyncio.create_task(watch(), name=f"watch-{name}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            done, _ = await asyncio.wait(self._posted.values(), timeout=remaining,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                return None
            got: Delivery | None = None
            try:
                for name, task in list(self._posted.items()):
                    if task in done:
                        del self._posted[name]
                        result = task.result()  # a Redis error propagates to the worker's retry loop
                        got = got or result
            except BaseException:
                await self.close()
                raise
            if got is not None:
                # Whatever the other reads take before they are cancelled stays in the processing
                # list (or the docket PEL) and is picked up as a leftover.
                await self.close()
                return got

    async def close(self) -> None:
        tasks = list(self._posted.values())
        self._posted.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a cancellation that lands inside redis-py's reconnect logic may be swallowed.
            done, _ = await asyncio.wait(tasks, timeout=2)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved, so asyncio does not log it as never retrieved

    # ---- finishing --------------------------------------------------------------------------------
    async def done(self, delivery: Delivery) -> None:
        if delivery.raw:
            await self.store.processing.finish(self.agent_id, delivery.raw)

    async def keep_alive(self, delivery: Delivery) -> None:
        return None  # the processing list does not expire; liveness is the worker's heartbeat key

    async def give_back(self, delivery: Delivery) -> None:
        await self.store.processing.give_back(self.agent_id, delivery.raw, delivery.source)


class ListsConsumer(MailboxConsumer):
    async def _take_shared(self) -> Delivery | None:
        taken = await self.store.processing.take_backlog(
            self.agent_id, lambda task_id: encode_message(shared_assign_message(task_id))
        )
        if taken is None:
            return None
        return delivery_from(taken[1], Source.SHARED)

    def _watchers(self) -> dict[str, Callable[[], Awaitable[Delivery | None]]]:
        watchers = super()._watchers()
        wake = self.store.keys.wake_shared

        async def shared() -> Delivery | None:
            token = await self.blocking.blpop([wake], timeout=POST_SECS)
            return await self._take_shared() if token else None

        watchers["shared"] = shared
        return watchers

    async def retry_or_fail(self, delivery: Delivery, error: str, reason: str, max_attempts: int) -> AttemptOutcome:
        outcome, _ = await self.store.attempts.failed(
            delivery.task_id or "", error, reason, agent_id=self.agent_id, max_attempts=max_attempts,
            processing=self.store.keys.processing(self.agent_id), entry=delivery.raw)
        if outcome is AttemptOutcome.REQUEUED:
            await self.store.processing.wake_shared()
        return outcome

    async def give_back(self, delivery: Delivery) -> None:
        if delivery.source is Source.SHARED and delivery.task_id:
            await self.store.processing.shared_return(delivery.task_id, self.agent_id, delivery.raw)
            await self.store.processing.wake_shared()
            return
        await super().give_back(delivery)


#: Puts one held task back into the shared queue: ``(task id, processing entry) -> put back``.
ToShared = Callable[[str, str], Awaitable[bool]]


async def requeue_processing(store: TownStore, agent_id: str, to_shared: ToShared, *, pool: bool) -> int:
    """A dead worker's processing list put back: shared work (and a pool agent's direct task
    assignments) through ``to_shared``, the rest to the front of its inbox, order kept. Each entry
    moves in one atomic step that first removes it, so two sweepers never put one entry back twice."""
    count = 0
    for raw in reversed(await store.processing.entries(agent_id)):
        delivery = delivery_from(raw, Source.LEFTOVER)
        if delivery.task_id and (pool or delivery.source is Source.SHARED):
            count += await to_shared(delivery.task_id, raw)
        else:
            count += await store.processing.restore_one(agent_id, raw)
    return count


async def sweep_processing(store: TownStore, requeue: Callable[[str, bool], Awaitable[int]]) -> int:
    """Put back the processing lists of agents whose worker liveness key lapsed (``requeue(agent id,
    pool)``)."""
    restored = 0
    dead = await store.processing.held_by_dead_workers(await store.agents.ids())
    for agent_id, agent in zip(dead, await store.agents.get_many(dead)):
        count = await requeue(agent_id, agent is not None and agent.pool is not None)
        if count:
            log.info("put back %d unit(s) of work held by dead worker %s", count, agent_id)
        restored += count
    return restored


class ListsQueue:
    name = "lists"

    def __init__(self, store: TownStore) -> None:
        self.store = store

    async def add_task(self, task: Task) -> None:
        await self.store.tasks.create_and_push(task, [(self.store.keys.backlog, task.id)],
                                               wake=self.store.processing.wake_target)

    async def enqueue(self, task_id: str) -> bool:
        if not await self.store.processing.shared_return(task_id):
            return False
        await self.store.processing.wake_shared()
        return True

    async def announce(self, task_id: str) -> None:
        await self.store.processing.wake_shared()

    async def withdraw(self, task_id: str) -> bool:
        return await self.store.backlog.remove(task_id)

    async def measure(self) -> QueueDepth:
        return QueueDepth(unread=await self.store.backlog.length(), in_flight=0)

    async def requeue_dead(self, agent_id: str, *, pool: bool = False) -> int:
        async def to_shared(task_id: str, raw: str) -> bool:
            return await self.store.processing.shared_return(task_id, agent_id, raw)

        count = await requeue_processing(self.store, agent_id, to_shared, pool=pool)
        if count:
            await self.store.processing.wake_shared()
        return count

    async def sweep(self, visibility_timeout_secs: int) -> int:
        return await sweep_processing(self.store, lambda agent_id, pool: self.requeue_dead(agent_id, pool=pool))

    def consumer(self, agent_id: str, *, blocking: aioredis.Redis, visibility_timeout_secs: int) -> ListsConsumer:
        return ListsConsumer(self.store, agent_id, blocking)


@hookimpl
def townhall_register_queue_backends(register: Callable[[QueueBackendSpec], None]) -> None:
    register(QueueBackendSpec(name="lists", factory=ListsQueue, summary="backlog list + per-agent inboxes"))
