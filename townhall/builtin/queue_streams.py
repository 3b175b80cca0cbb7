"""Queue backend ``streams`` (``use_streams = true``): shared work through the docket stream.

The upstream backlog list stays the catalogue of queued shared work (backlog listing, claim and the
original ``tt`` keep working); each backlog add is also announced on ``tt:{town}:docket:tasks`` and
workers take it with ``XREADGROUP`` in group ``workers``. A task taken out of the backlog by other means
(claim, assign-all, delete) leaves a stale entry that the worker reading it acknowledges and skips.
"""

from __future__ import annotations

from typing import Callable

from townhall import hookimpl
from townhall.queues import QueueDepth
from townhall.registry import QueueBackendSpec
from townhall.store import TownStore


class StreamsQueue:
    name = "streams"

    def __init__(self, store: TownStore) -> None:
        self.store = store
        self._group_ready = False

    async def enqueue(self, task_id: str) -> None:
        task = await self.store.tasks.get(task_id)
        # Catalogue first: a crash between the two leaves a listed task a sweep can re-announce,
        # never a stream entry pointing at a task the backlog does not know.
        await self.store.backlog.push(task_id)
        if not self._group_ready:
            await self.store.docket.ensure_group()
            self._group_ready = True
        await self.store.docket.add(task_id, task.description if task else "")

    async def withdraw(self, task_id: str) -> bool:
        return await self.store.backlog.remove(task_id)

    async def measure(self) -> QueueDepth:
        depth = await self.store.docket.depth()
        return QueueDepth(unread=depth.unread, in_flight=depth.pending)


@hookimpl
def townhall_register_queue_backends(register: Callable[[QueueBackendSpec], None]) -> None:
    register(QueueBackendSpec(name="streams", factory=StreamsQueue,
                              summary="docket stream + consumer group `workers` (at-least-once)"))
