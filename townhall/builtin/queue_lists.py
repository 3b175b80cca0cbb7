"""Queue backend ``lists`` (default): shared work is the upstream backlog list."""

from __future__ import annotations

from typing import Callable

from townhall import hookimpl
from townhall.queues import QueueDepth
from townhall.registry import QueueBackendSpec
from townhall.store import TownStore


class ListsQueue:
    name = "lists"

    def __init__(self, store: TownStore) -> None:
        self.store = store

    async def enqueue(self, task_id: str) -> None:
        await self.store.backlog.push(task_id)

    async def withdraw(self, task_id: str) -> bool:
        return await self.store.backlog.remove(task_id)

    async def measure(self) -> QueueDepth:
        return QueueDepth(unread=await self.store.backlog.length(), in_flight=0)


@hookimpl
def townhall_register_queue_backends(register: Callable[[QueueBackendSpec], None]) -> None:
    register(QueueBackendSpec(name="lists", factory=ListsQueue, summary="backlog list + per-agent inboxes"))
