"""Time: hashes carry ``+00:00`` offsets, JSON documents carry ``Z``.

Upstream (chrono) writes up to 9 fractional digits, which Python's datetime cannot hold, so readers
truncate to microseconds.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_FRACTION = re.compile(r"(\.\d{6})\d+")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_hash_time(value: datetime) -> str:
    """RFC 3339 with a ``+00:00`` offset, as upstream writes agent/task hash fields."""
    return _as_utc(value).isoformat(timespec="microseconds")


def format_json_time(value: datetime) -> str:
    """RFC 3339 with a ``Z`` suffix, as upstream writes message/mission/event JSON."""
    return format_hash_time(value).replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    """Tolerant RFC 3339 reader: ``Z`` or offsets, 0–9 fractional digits; ``None`` if unparseable."""
    if not text:
        return None
    try:
        # What townhall and upstream write parses as is (Python 3.11 reads ``Z`` and drops digits past
        # the sixth, as the path below does): one C call per field of every record read.
        return _as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    raw = _FRACTION.sub(r"\1", text.strip())
    if raw.endswith(("z", "Z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return _as_utc(parsed)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_ms(value: datetime) -> int:
    """Whole milliseconds since the epoch (naive times are UTC): how the task history scores
    ``created_at`` (its Lua twin in ``store/history_lua.py`` reads the hash text the same way)."""
    return (_as_utc(value) - _EPOCH) // timedelta(milliseconds=1)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is timezone.utc:  # what townhall and upstream write (``+00:00``, ``Z``): as it is
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
