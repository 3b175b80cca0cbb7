"""Checks on caller input shared by the services; each failure names the offending field.

The limits are documented in ``docs/api.md`` ("Limits").
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Awaitable, Callable, TypeVar

from townhall.domain import is_uuid
from townhall.domain.agents import AGENT_NAME_PATTERN
from townhall.domain_errors import InvalidInput

#: Task descriptions, message texts, results and reasons (characters, as JSON Schema's ``maxLength``
#: counts them, so the OpenAPI document can state the limit exactly).
MAX_TEXT_CHARS = 64 * 1024
#: Agent names, nicknames, roles and tags (characters).
MAX_LABEL_CHARS = 64
#: Tags per task.
MAX_TAGS = 32
#: A task's own ``timeout_secs`` (one day at most).
MAX_TASK_TIMEOUT_SECS = 86_400

#: The canonical text form (8-4-4-4-12 hex digits, any case): JSON Schema's ``uuid`` format.
UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
_AGENT_NAME = re.compile(AGENT_NAME_PATTERN)  # the domain's rule (names become paths and arguments)
_UUID = re.compile(UUID_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

R = TypeVar("R")


def require_uuid(field: str, value: str) -> str:
    """The lowercase form of a UUID in its canonical text form (surrounding whitespace ignored), else
    :class:`InvalidInput` naming ``field``. Braces, ``urn:uuid:`` or missing hyphens are refused: ids are
    written one way only."""
    text = (value or "").strip()
    if not _UUID.match(text):
        raise InvalidInput(field, f"{field} must be a UUID, got '{value}'")
    return text.lower()


def require_timestamp(field: str, value: str) -> datetime:
    """An RFC 3339 date-time (``T``/``Z`` in either case; no offset: UTC), else :class:`InvalidInput`
    naming ``field``. Numbers are refused: a timestamp is written one way only."""
    text = (value or "").strip()
    try:
        if "T" not in text.upper():
            raise ValueError(text)
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        raise InvalidInput(field, f"{field} must be an RFC 3339 date-time, got '{value}'") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


async def require_record(
    field: str, value: str, get: Callable[[str], Awaitable[R | None]], missing: Callable[[str], Exception]
) -> R:
    """The record ``get`` finds under the UUID ``value`` (checked as :func:`require_uuid` does), else
    ``missing(id)`` is raised: the service's not-found error."""
    record_id = require_uuid(field, value)
    record = await get(record_id)
    if record is None:
        raise missing(record_id)
    return record


def check_text(field: str, value: str, *, max_chars: int = MAX_TEXT_CHARS) -> str:
    if len(value) > max_chars:
        raise InvalidInput(field, f"{field} is longer than the maximum of {max_chars} characters")
    return value


def check_label(field: str, value: str | None) -> str | None:
    """Optional short free text (nickname, role, tag): trimmed, no control characters, bounded."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_LABEL_CHARS:
        raise InvalidInput(field, f"{field} is longer than {MAX_LABEL_CHARS} characters")
    if _CONTROL.search(text):
        raise InvalidInput(field, f"{field} must not contain control characters")
    return text


def check_agent_name(value: str) -> str:
    name = (value or "").strip()
    if not name:
        raise InvalidInput("name", "name must not be empty")
    if len(name) > MAX_LABEL_CHARS:
        raise InvalidInput("name", f"name is longer than {MAX_LABEL_CHARS} characters")
    if not _AGENT_NAME.match(name):
        raise InvalidInput(
            "name", "name may only contain letters, digits, '.', '_' and '-', and must start with a letter or digit"
        )
    if is_uuid(name):
        raise InvalidInput("name", "name must not be a UUID (UUIDs always refer to agent ids)")
    return name


def check_timeout(value: float | None) -> int | None:
    """A task's ``timeout_secs``: ``None`` (the town's default), else a whole number of seconds from 1 to
    :data:`MAX_TASK_TIMEOUT_SECS` (``60.0`` counts, as it does in JSON)."""
    if value is None:
        return None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not 1 <= value <= MAX_TASK_TIMEOUT_SECS:
        raise InvalidInput("timeout_secs", f"timeout_secs must be a whole number of seconds from 1 to {MAX_TASK_TIMEOUT_SECS}")
    return int(value)


def check_tags(values: list[str] | None) -> list[str]:
    # Trimmed like every other label; a trailing newline is also what a ``$``-anchored pattern allows.
    tags = [tag.strip() for tag in values or []]
    if len(tags) > MAX_TAGS:
        raise InvalidInput("tags", f"at most {MAX_TAGS} tags")
    for tag in tags:
        if len(tag) > MAX_LABEL_CHARS or _CONTROL.search(tag):
            raise InvalidInput("tags", f"each tag is at most {MAX_LABEL_CHARS} characters without control characters")
    return tags
