"""Reading the town's events: what a filter may say (``GET /v1/events``, ``tt events``), and the recent
history. The live fan-out is :mod:`townhall.services.event_feed`."""

from __future__ import annotations

import re

import msgspec

from townhall.domain.events import EventFilter, EventRecord, EventType
from townhall.domain_errors import InvalidInput
from townhall.services.agents import AgentService
from townhall.services.inputs import require_uuid
from townhall.store import TownStore

KNOWN_TYPES = frozenset(t.value for t in EventType)
#: A stream id a client may resume after: at most 19 digits each side, so it always fits Redis' 64-bit
#: stream ids (a larger one would fail in XRANGE after the stream began).
LAST_EVENT_ID_PATTERN = r"^\d{1,19}(-\d{1,19})?$"
_LAST_EVENT_ID = re.compile(LAST_EVENT_ID_PATTERN)
_TYPE_NAME = "(" + "|".join(sorted(KNOWN_TYPES)) + ")"
#: What ``types`` accepts: known event type names separated by commas (spaces around them allowed).
TYPES_PATTERN = rf"^ *{_TYPE_NAME} *(, *{_TYPE_NAME} *)*$"
#: Entries ``recent`` looks at, at most, to find the events a filter wants.
HISTORY_SCAN = 10_000


class EventQuery(msgspec.Struct, frozen=True):
    """A checked filter and where to resume (a stream id, or ``None``: from now)."""

    filter: EventFilter
    after: str | None = None


def parse_types(text: str | None) -> frozenset[str] | None:
    """A comma list of event types (``None``: every type; spaces around names are fine); an unknown
    one, or an empty entry, is an :class:`InvalidInput` naming it (as :data:`TYPES_PATTERN` says)."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise InvalidInput("types", f"types must be event type names separated by commas, got {text[:80]!r}")
    unknown = [name for name in names if name not in KNOWN_TYPES]
    if unknown:
        raise InvalidInput("types", f"unknown event type(s): {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(KNOWN_TYPES))}")
    return frozenset(names)


def check_stream_id(field: str, value: str | None) -> str | None:
    """A stream entry id (``<ms>-<seq>`` or ``<ms>``) as given by ``Last-Event-ID`` (``None``: none;
    anything else, blank included, must be one, as the document's pattern says)."""
    if value is None:
        return None
    text = value.strip()
    if not _LAST_EVENT_ID.match(text):
        raise InvalidInput(field, f"{field} must be an event id such as 1733058000000-0, got {text[:40]!r}")
    return text


class EventService:
    def __init__(self, store: TownStore, agents: AgentService) -> None:
        self.store = store
        self.agents = agents

    async def query(self, *, agent: str | None = None, task: str | None = None, mission: str | None = None,
                    types: str | None = None, after: str | None = None,
                    after_field: str = "Last-Event-ID") -> EventQuery:
        """Check a filter: ``agent`` is an agent reference (404 unknown, 409 ambiguous), ``task`` and
        ``mission`` are UUIDs, ``types`` a comma list of :class:`EventType` values, ``after`` a stream id
        (reported as ``after_field``)."""
        event_types = parse_types(types)
        task_id = require_uuid("task", task) if task is not None else None
        mission_id = require_uuid("mission", mission) if mission is not None else None
        resume = check_stream_id(after_field, after)
        agent_id = (await self.agents.resolve(agent)).id if agent else None
        return EventQuery(filter=EventFilter(agent_id=agent_id, task_id=task_id, mission_id=mission_id,
                                             types=event_types), after=resume)

    async def recent(self, event_filter: EventFilter, limit: int) -> list[EventRecord]:
        """The newest ``limit`` events the filter wants, oldest first (looking at no more than
        :data:`HISTORY_SCAN` entries)."""
        found: list[EventRecord] = []
        before: str | None = None
        scanned = 0
        while len(found) < limit and scanned < HISTORY_SCAN:
            page = await self.store.events.before(before, 500)
            if not page:
                break
            scanned += len(page)
            before = page[0].id
            found = [r for r in page if event_filter.matches(r)] + found
        return found[-limit:] if limit else []
