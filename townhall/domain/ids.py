"""Record identifiers: UUID strings, because that is how every Redis key and JSON body carries them."""

from __future__ import annotations

import uuid


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def new_id() -> str:
    return str(uuid.uuid4())
