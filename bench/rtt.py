"""Count the Redis round trips a townhall route makes (one per command sent, one per pipeline), so
the baseline can be checked to do the same number."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from redis.asyncio.connection import AbstractConnection


class RoundTrips:
    def __init__(self) -> None:
        self.count = 0
        self.commands: list[str] = []


@contextmanager
def counting_round_trips() -> Iterator[RoundTrips]:
    counter = RoundTrips()
    original = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        counter.count += 1
        first = command[0] if isinstance(command, list) and command else command
        counter.commands.append(bytes(first)[:60].decode("latin-1") if isinstance(first, (bytes, bytearray, memoryview)) else str(first)[:60])
        await original(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
