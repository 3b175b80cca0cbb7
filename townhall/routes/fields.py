"""Constrained request field types: the input limits of :mod:`townhall.services.inputs`, stated so that
the OpenAPI document declares them and the body decoder enforces them before a service runs.

The services keep their own checks (they have other callers than HTTP); these types only make the
HTTP contract say what the services accept, so a client (or a fuzzer) can tell valid input from invalid
input by the schema alone.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar.params import PathParameter, QueryParameter

from townhall.services.inputs import (
    AGENT_NAME_PATTERN,
    ID_OR_PREFIX_PATTERN,
    MAX_LABEL_CHARS,
    MAX_TAGS,
    MAX_TASK_TIMEOUT_SECS,
    MAX_TEXT_CHARS,
    UUID_PATTERN,
)

#: ECMA-262 and Python ``re`` read this the same way: no C0 control character and no DEL.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"

Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]

AgentName = Annotated[str, msgspec.Meta(
    min_length=1, max_length=MAX_LABEL_CHARS, pattern=AGENT_NAME_PATTERN,
    description="Letters, digits, '.', '_' and '-', starting with a letter or digit. Also refused (422): "
                "a UUID, and the reserved names `supervisor` and `conductor` (any case).",
)]

Label = Annotated[str, msgspec.Meta(max_length=MAX_LABEL_CHARS, pattern=NO_CONTROL)]

_TAG_SCHEMA = {"type": "string", "maxLength": MAX_LABEL_CHARS, "pattern": NO_CONTROL}
Tags = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=MAX_LABEL_CHARS, pattern=NO_CONTROL)]],
    # Litestar drops constraints of list items from the document; state them explicitly.
    msgspec.Meta(max_length=MAX_TAGS, extra_json_schema={"extra": {"items": _TAG_SCHEMA}}),
]

#: A number, not an integer type: JSON Schema counts ``60.0`` as an integer, and so must we (whole seconds).
TimeoutSecs = Annotated[float, msgspec.Meta(
    ge=1, le=MAX_TASK_TIMEOUT_SECS, multiple_of=1,
    description="Seconds one attempt of the task may run before its worker stops it (default: the town's "
                "`[agent] task_timeout_secs`).",
)]

Uuid = Annotated[str, msgspec.Meta(pattern=UUID_PATTERN, extra_json_schema={"extra": {"format": "uuid"}})]

MessageKindName = Literal["task", "query", "info", "ack", "status_request", "shutdown"]

#: ``""`` and ``backlog`` are upstream's aliases of ``list`` and ``to_backlog``.
OrphanActionName = Literal["list", "", "to_backlog", "backlog", "cancel", "delete"]


#: ``?start=true`` on the routes that hand work to an agent: a ``Stopped``/``Error`` agent is restarted
#: through the launcher first (without it such an agent refuses the work with a 409).
Start = Annotated[bool, QueryParameter(
    name="start", required=False,
    description="Restart the agent first if it is Stopped or Error (without it such an agent is a 409).",
)]


def uuid_path(what: str) -> PathParameter:
    """A path parameter that names a record by id: its UUID or a unique prefix of one (the ids ``tt``
    prints); anything else is a 422 naming the parameter (checked by the service, which words the error)."""
    return PathParameter(
        description=f"The {what}'s id: a UUID, or its first 4 or more hex digits if no other {what}'s id "
                    f"starts with them (several do: 409 listing them as `candidates`; not an id: 422)",
        schema_extra={"pattern": ID_OR_PREFIX_PATTERN, "minLength": 4, "maxLength": 36},
    )
