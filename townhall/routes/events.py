"""``GET /v1/events``: the town's events as Server-Sent Events (scope ``town.read``; docs/events.md)."""

from __future__ import annotations

from typing import Annotated, AsyncIterator

from litestar import get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import Stream

from townhall.auth import Scope
from townhall.domain.events import EventRecord
from townhall.http.dependencies import Context, Services
from townhall.routes.common import Resource, problems
from townhall.services.event_feed import FeedItem
from townhall.services.events import KNOWN_TYPES, LAST_EVENT_ID_PATTERN, TYPES_PATTERN
from townhall.services.inputs import UUID_PATTERN

SSE = "text/event-stream"

DESCRIPTION = f"""A stream of the town's events (`text/event-stream`, Server-Sent Events), each as

```
id: <stream entry id>
event: <event_type>
data: <the event as one line of JSON: the EventRecord schema>
```

The stream opens with the comment line `: subscribed`; a comment `: heartbeat` follows whenever
`[townhall.events] heartbeat_secs` (default 15) pass without an event. Reconnect with the
`Last-Event-ID` header set to the last `id` received to get, in order and without duplicates, what
came since (as far back as the stream's retention reaches), then live events. A client that stops
reading is disconnected once `subscriber_buffer` events wait for it; it resumes the same way.

Event types: {", ".join(f"`{t}`" for t in sorted(KNOWN_TYPES))} (entries written by other tools may
carry others; without `types` they are shown too). See docs/events.md.
"""

AgentFilter = Annotated[str | None, QueryParameter(
    name="agent", required=False, max_length=128,
    description="Only events naming this agent (name or id; 404 unknown, 409 ambiguous)")]
TaskFilter = Annotated[str | None, QueryParameter(
    name="task", required=False, format="uuid", schema_extra={"pattern": UUID_PATTERN},
    description="Only events of this task (a UUID; anything else is a 422)")]
MissionFilter = Annotated[str | None, QueryParameter(
    name="mission", required=False, format="uuid", schema_extra={"pattern": UUID_PATTERN},
    description="Only events of this mission (a UUID; anything else is a 422)")]
TypesFilter = Annotated[str | None, QueryParameter(
    name="types", required=False, max_length=1024, schema_extra={"pattern": TYPES_PATTERN},
    description="Comma list of event types; an unknown one is a 422 naming it")]
LastEventId = Annotated[str | None, HeaderParameter(
    # A header is text or absent: a plain string (not string-or-null, which a client sends as 'null').
    name="Last-Event-ID", required=False, max_length=39,
    schema_extra={"pattern": LAST_EVENT_ID_PATTERN, "type": "string", "oneOf": None},
    description="Resume after this event id (`<ms>-<seq>`; anything else is a 422)")]


def sse_frame(item: FeedItem) -> bytes:
    record = item.record
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (record.id.encode(), record.event_type.encode(), item.json)


class EventController(Resource, path="/events", tag="events", scope=Scope.TOWN_READ):
    @get(
        "/",
        opt={"stream": True},
        summary="Live events (Server-Sent Events), filterable, resumable with Last-Event-ID",
        description=DESCRIPTION,
        responses={
            200: ResponseSpec(data_container=EventRecord, media_type=SSE, generate_examples=False,
                              description="The event stream; each `data:` line is one EventRecord"),
            **problems(404, 409, 422),
        },
    )
    async def events(self, context: Context, services: Services, agent: AgentFilter = None,
                     task: TaskFilter = None, mission: MissionFilter = None, types: TypesFilter = None,
                     last_event_id: LastEventId = None) -> Stream:
        query = await services.events.query(agent=agent, task=task, mission=mission, types=types,
                                            after=last_event_id)
        feed = context.runtime.feed
        await feed.start()  # here, so that an unreachable Redis is a 503 rather than a broken stream
        heartbeat = context.town.config.townhall.events.heartbeat_secs

        async def frames() -> AsyncIterator[bytes]:
            subscribed = False
            async for batch in feed.follow(query.filter, query.after, heartbeat):
                if batch:
                    yield b"".join(sse_frame(item) for item in batch)
                else:
                    yield b": heartbeat\n\n" if subscribed else b": subscribed\n\n"
                    subscribed = True

        return Stream(frames(), media_type=SSE, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
