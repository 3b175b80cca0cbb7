"""The finishing touches Litestar's generated OpenAPI document needs before third-party tools accept it
(Redocly, Spectral's ``spectral:oas``, openapi-python-client; ``tests/test_openapi_lint.py``).

Applied once to the app's document, so ``/schema`` and ``townhall openapi`` say the same. Each rule is
general (it looks at every operation), so routes added later are covered without a change here:

* a route without a scope is public: it says so (``security: []``), and declares the 429 of the public
  rate limiter and the 504 of the request deadline, which every route can give;
* every tag an operation uses is declared, with a description;
* a ``oneOf`` of one member (Litestar's rendering of ``T | UNSET``) is that member;
* a ``text/event-stream`` response's schema describes one event as a client parses it (``id``,
  ``event``, ``data``), its ``data`` JSON of the schema the route declared (``contentSchema``), which is
  what SSE-aware tools (schemathesis) validate each event against;
* the document names its license and where to ask.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIType,
    Contact,
    License,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Reference,
    Schema,
    Tag,
)

from townhall.problems import PROBLEM_JSON

#: Descriptions of the tags townhall's own routes use; a tag a plugin adds is declared with its name.
TAG_DESCRIPTIONS = {
    "town": "The town and its status (scope `town.read`).",
    "agents": "Agents: listing and inboxes (`town.read`); spawn, kill, restart, pause, prune (`agent.manage`).",
    "tasks": "Tasks: the task history, pending work and one task (`town.read`); assign, complete, cancel "
             "and retry (`town.write`).",
    "backlog": "The shared backlog (`town.read` to list, `town.write` to change).",
    "messages": "Messages to agents' inboxes (`town.write`).",
    "recovery": "Recover stale agents and reclaim dead agents' work (`agent.manage`).",
    "missions": "Missions a dispatcher runs: read (`town.read`) and control (`agent.manage`).",
    "logs": "A task's run log and an agent's worker log as text, from this townhall's machine (`town.read`).",
    "events": "The town's live events as Server-Sent Events, resumable with `Last-Event-ID` (`town.read`).",
    "probes": "Public, without credentials: health, readiness, metrics, the autoscaler signal, the errors page.",
}

LICENSE = License(name="MIT", identifier="MIT")
CONTACT = Contact(name="Tinytown townhall maintainers")

#: What every public route can answer besides its own responses.
_PUBLIC_PROBLEMS = {
    "429": "Too many requests from this address (the public rate limit; see Retry-After)",
    "504": "The request did not complete within `request_timeout_ms`",
}


def finish_openapi(app: Litestar) -> None:
    """Apply the rules above to ``app``'s document (built now, once, and served as it is)."""
    document = app.openapi_schema  # built on first use and kept: what /schema serves
    document.info.license = document.info.license or LICENSE
    document.info.contact = document.info.contact or CONTACT
    used: list[str] = []
    for operation in _operations(document):
        if operation.security is None:
            operation.security = []
            _add_public_problems(operation)
        for tag in operation.tags or ():
            if tag not in used:
                used.append(tag)
    declared = {tag.name for tag in document.tags or ()}
    document.tags = [*(document.tags or ()),
                     *(Tag(name=t, description=TAG_DESCRIPTIONS.get(t, t)) for t in used if t not in declared)]
    for schema in (document.components.schemas or {}).values():
        _collapse_single_one_of(schema)
    for operation in _operations(document):
        for response in (operation.responses or {}).values():
            stream = getattr(response, "content", None) and response.content.get(SSE)
            if stream is not None and stream.schema is not None:
                stream.schema = _sse_event(stream.schema)


SSE = "text/event-stream"


def _sse_event(data: Schema | Reference) -> Schema:
    """One Server-Sent Event whose ``data`` line is JSON of the schema ``data``."""
    return Schema(
        type=OpenAPIType.OBJECT, required=["event", "data"],
        description="One event of the stream, as an SSE client reads it: `id`, `event` and `data` lines",
        properties={
            "id": Schema(type=OpenAPIType.STRING, description="The stream entry id (`<ms>-<seq>`)"),
            "event": Schema(type=OpenAPIType.STRING, description="The event type"),
            "data": Schema(type=OpenAPIType.STRING, content_media_type="application/json", content_schema=data,
                           description="The event as one line of JSON"),
        },
    )


def _operations(document: OpenAPI) -> Iterator[Operation]:
    for item in (document.paths or {}).values():
        for field in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation = getattr(item, field)
            if operation is not None:
                yield operation


def _add_public_problems(operation: Operation) -> None:
    responses = operation.responses if operation.responses is not None else {}
    for status, why in _PUBLIC_PROBLEMS.items():
        responses.setdefault(status, OpenAPIResponse(
            description=why,
            content={PROBLEM_JSON: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))},
        ))
    operation.responses = responses


def _collapse_single_one_of(schema: Any) -> None:
    if isinstance(schema, Schema):
        if schema.one_of is not None and len(schema.one_of) == 1 and isinstance(schema.one_of[0], Schema):
            only = schema.one_of[0]
            schema.one_of = None
            for field in dataclasses.fields(Schema):
                if getattr(schema, field.name) is None and getattr(only, field.name) is not None:
                    setattr(schema, field.name, getattr(only, field.name))
        for field in dataclasses.fields(Schema):
            _collapse_single_one_of(getattr(schema, field.name))
    elif isinstance(schema, (list, tuple)):
        for item in schema:
            _collapse_single_one_of(item)
    elif isinstance(schema, dict):
        for item in schema.values():
            _collapse_single_one_of(item)
