"""Record identifiers: UUID strings, because that is how every Redis key and JSON body carries them."""

from __future__ import annotations

import re
import uuid

_CANONICAL = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_uuid(text: str) -> bool:
    """What :class:`uuid.UUID` accepts (braces, ``urn:uuid:``, hyphens anywhere); the usual spelling
    is checked without building a UUID."""
    if isinstance(text, str) and _CANONICAL.fullmatch(text):
        return True
    try:
        uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def new_id() -> str:
    return str(uuid.uuid4())
