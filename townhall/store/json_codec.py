"""JSON documents as upstream tinytown stores them: inbox messages and mission records.

Messages are internally tagged (``type`` at top level, the body's fields beside id/from/to), written
with ``Z`` timestamps; readers ignore fields they do not know. Mission records belong to the
dispatcher, so a save overlays only the fields townhall changed on the document it read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from townhall.domain.messages import Message, MessageBody, Priority
from townhall.domain.missions import Mission
from townhall.domain.timestamps import format_json_time, utc_now


class _Envelope(msgspec.Struct):
    id: str
    from_: str = msgspec.field(name="from")
    to: str
    priority: Priority = Priority.NORMAL
    created_at: datetime | None = None
    correlation_id: str | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_body_decoder = msgspec.json.Decoder(MessageBody)


def decode_message(raw: str | bytes) -> Message:
    """Parse one stored inbox entry; unknown extra fields are ignored. Raises ``msgspec.DecodeError``
    (a ``ValueError``) for anything that is not a message this version knows."""
    env = _envelope_decoder.decode(raw)
    body = _body_decoder.decode(raw)
    return Message(
        id=env.id,
        from_=env.from_,
        to=env.to,
        body=body,
        priority=env.priority,
        created_at=env.created_at or utc_now(),
        correlation_id=env.correlation_id,
    )


def try_decode_message(raw: str | bytes) -> Message | None:
    try:
        return decode_message(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def encode_message(message: Message) -> str:
    """The JSON shape upstream writes: id, from, to, type, variant fields, priority, created_at (``Z``),
    correlation_id (present even when null)."""
    doc: dict[str, Any] = {"id": message.id, "from": message.from_, "to": message.to}
    doc.update(msgspec.to_builtins(message.body))
    doc["priority"] = message.priority.value
    doc["created_at"] = format_json_time(message.created_at)
    doc["correlation_id"] = message.correlation_id
    return msgspec.json.encode(doc).decode()


def readdress_message(raw: str, to: str) -> str:
    """Change the recipient of a stored entry, keeping every other field (even ones we do not know)."""
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw
    if not isinstance(doc, dict):
        return raw
    doc["to"] = to
    return msgspec.json.encode(doc).decode()


MISSION_FIELDS = tuple(f for f in Mission.__struct_fields__ if f != "raw")


def decode_mission(raw: str | bytes) -> Mission:
    """Raises ``ValueError`` (msgspec errors) for a document that is not a mission."""
    doc = msgspec.json.decode(raw)
    if not isinstance(doc, dict):
        raise msgspec.ValidationError("mission record is not a JSON object")
    known = {k: doc[k] for k in MISSION_FIELDS if k in doc}
    mission = msgspec.convert(known, type=Mission)
    mission.raw = doc
    return mission


def encode_mission(mission: Mission) -> str:
    """Overlay on the original document only the fields whose value changed."""
    doc = dict(mission.raw)
    original = decode_mission(msgspec.json.encode(mission.raw)) if mission.raw else None
    for name in MISSION_FIELDS:
        value = getattr(mission, name)
        if original is not None and getattr(original, name) == value:
            continue
        doc[name] = _mission_value(value)
    return msgspec.json.encode(doc).decode()


def _mission_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_json_time(value)
    return msgspec.to_builtins(value)
