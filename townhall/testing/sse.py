"""A small Server-Sent Events reader over an httpx stream, for tests and the benchmark of
``GET /v1/events``. Unlike browser ``EventSource`` (and ``httpx-sse``) it also reports comment lines,
so a test can await the ``: subscribed`` line and the heartbeats."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx


@dataclass
class SseMessage:
    """One dispatched event, or (``comment`` set) one comment line."""

    id: str | None = None
    event: str | None = None
    data: str = ""
    comment: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.data)


async def read_sse(response: httpx.Response) -> AsyncIterator[SseMessage]:
    """The messages and comments of an open ``text/event-stream`` response, as they arrive."""
    current = SseMessage()
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data or current.id is not None or current.event is not None:
                current.data = "\n".join(data)
                yield current
            current, data = SseMessage(), []
            continue
        if line.startswith(":"):
            yield SseMessage(comment=line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        else:
            current.fields[name] = value


async def next_event(messages: AsyncIterator[SseMessage]) -> SseMessage:
    """The next message that is not a comment."""
    async for message in messages:
        if message.comment is None:
            return message
    raise EOFError("the event stream ended")


async def until_comment(messages: AsyncIterator[SseMessage], text: str) -> None:
    """Read up to (and including) the comment ``text`` (e.g. ``subscribed``)."""
    async for message in messages:
        if message.comment == text:
            return
    raise EOFError(f"the event stream ended before ': {text}'")
