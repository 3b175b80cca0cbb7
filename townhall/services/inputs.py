"""Checks on caller input shared by the services; each failure names the offending field.

The limits are documented in ``docs/api.md`` ("Limits").
"""

from __future__ import annotations

import re

from townhall.domain import is_uuid
from townhall.domain_errors import InvalidInput

#: Task descriptions, message texts, results and reasons (UTF-8 bytes).
MAX_TEXT_BYTES = 64 * 1024
#: Agent names, nicknames, roles and tags (characters).
MAX_LABEL_CHARS = 64
#: Tags per task.
MAX_TAGS = 32

# Agent names become file names (``.tt/logs/<name>.log``) and CLI arguments, so they are kept to a
# safe alphabet; everything else about them is upstream's rule (reserved names are checked elsewhere).
_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def require_uuid(field: str, value: str) -> str:
    """The canonical lowercase form of a UUID string, else :class:`InvalidInput` naming ``field``."""
    text = (value or "").strip()
    if not is_uuid(text):
        raise InvalidInput(field, f"{field} must be a UUID, got '{value}'")
    return text.lower()


def check_text(field: str, value: str, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    if len(value.encode("utf-8")) > max_bytes:
        raise InvalidInput(field, f"{field} is longer than the maximum of {max_bytes} bytes")
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


def check_tags(values: list[str] | None) -> list[str]:
    tags = list(values or [])
    if len(tags) > MAX_TAGS:
        raise InvalidInput("tags", f"at most {MAX_TAGS} tags")
    for tag in tags:
        if len(tag) > MAX_LABEL_CHARS or _CONTROL.search(tag):
            raise InvalidInput("tags", f"each tag is at most {MAX_LABEL_CHARS} characters without control characters")
    return tags
