"""Checks on caller input shared by the services; each failure names the offending field.

The limits are documented in ``docs/api.md`` ("Limits").
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Awaitable, Callable, Sequence

from townhall.domain import is_uuid
from townhall.domain.agents import AGENT_NAME_PATTERN
from townhall.domain_errors import AmbiguousId, InvalidInput

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
#: The shortest id prefix accepted where an id is expected (the 4-character short id ``tt`` shows).
MIN_ID_PREFIX = 4
#: A full UUID, or the start of one: at least :data:`MIN_ID_PREFIX` hex digits, then hex digits and hyphens.
ID_OR_PREFIX_PATTERN = r"^[0-9A-Fa-f]{4}[0-9A-Fa-f-]{0,32}$"
_ID_OR_PREFIX = re.compile(ID_OR_PREFIX_PATTERN)
#: How many candidates an ambiguous prefix lists.
MAX_CANDIDATES = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

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


async def resolve_id(
    field: str, value: str, ids_with_prefix: Callable[[str, int], Awaitable[Sequence[str]]],
    missing: Callable[[str], Exception], what: str,
) -> str:
    """The full id ``value`` names: a UUID as it is (lowercase), or the one id that starts with the
    prefix ``value`` (at least :data:`MIN_ID_PREFIX` hex digits, as ``tt`` shows ids). No match is
    ``missing(value)``, several are :class:`AmbiguousId` listing them, anything else is
    :class:`InvalidInput` naming ``field``."""
    text = (value or "").strip()
    if _UUID.match(text):
        return text.lower()
    if not _ID_OR_PREFIX.match(text):
        raise InvalidInput(field, f"{field} must be a UUID or at least {MIN_ID_PREFIX} leading hex digits of one, "
                                  f"got '{value}'")
    found = await ids_with_prefix(text.lower(), MAX_CANDIDATES + 1)
    if not found:
        raise missing(text)
    if len(found) > 1:
        raise AmbiguousId(what, text, found[:MAX_CANDIDATES])
    return found[0]


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
