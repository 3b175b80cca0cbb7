"""Hash encodings of agents and tasks exactly as upstream tinytown writes them (reference §3.1–§3.2).

Every value is a string; optional fields that are empty are *absent* from the hash, so an encoder
returns both the fields to set and the optional fields to delete (in the same transaction).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

import msgspec

from townhall.domain.agents import Agent
from townhall.domain.lenient import LenientEnum
from townhall.domain.tasks import Task
from townhall.domain.timestamps import format_hash_time, parse_time, utc_now

log = logging.getLogger(__name__)

R = TypeVar("R", bound=msgspec.Struct)

# Counted in place by Lua (HINCRBY): a record write leaves them alone, so it never undoes a count.
_COUNTED_IN_PLACE = frozenset({"attempts"})
# Ids read back as "none" when empty, so an empty string is written as an absent field.
_EMPTY_IS_ABSENT = frozenset({"nickname", "role_id", "parent_agent_id", "current_task", "assigned_to", "parent_id"})


class HashWrite(msgspec.Struct, frozen=True):
    """Fields to ``HSET`` and optional fields to ``HDEL``, applied together."""

    set: dict[str, str]
    delete: tuple[str, ...] = ()


def encode_value(value: object) -> str | None:
    """One hash value; ``None`` means "absent" (the field is deleted)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return format_hash_time(value)
    if isinstance(value, LenientEnum):
        return value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return msgspec.json.encode(value).decode()
    return str(value)


def split_fields(values: Mapping[str, object]) -> HashWrite:
    fields: dict[str, str] = {}
    cleared: list[str] = []
    for name, value in values.items():
        text = encode_value(value)
        if text is None or (text == "" and name in _EMPTY_IS_ABSENT):
            cleared.append(name)
        else:
            fields[name] = text
    return HashWrite(set=fields, delete=tuple(cleared))


def agent_to_hash(agent: Agent) -> HashWrite:
    return split_fields({name: getattr(agent, name) for name in agent.__struct_fields__})


def task_to_hash(task: Task) -> HashWrite:
    return split_fields({name: getattr(task, name) for name in task.__struct_fields__ if name not in _COUNTED_IN_PLACE})


# A missing required timestamp reads as the record's creation, except these, which read as now.
_MISSING_IS_NOW = frozenset({"last_heartbeat"})
# Every record has these two; they are read first (a missing ``created_at`` reads as now).
_HEAD_FIELDS = frozenset({"id", "created_at"})
# Optional text whose empty value is kept (an empty result); other empty optionals read as absent.
_EMPTY_IS_TEXT = frozenset({"result"})


def _uint(raw: str | None) -> int:
    if raw and raw.isdecimal():  # what townhall and upstream write: no sign, no blanks
        return int(raw)
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return 0


def _reading(name: str, kind: object, names: dict[str, object]) -> str:
    """How one field's hash value (``get(name)``, ``None`` when absent) is read, by the field's type in the
    record struct, as a Python expression (``names`` gets what it calls): leniently, as upstream does
    (an unknown enum value reads as the enum's fallback, a bad count as 0, an unreadable timestamp as
    absent). ``created`` is the record's creation time, ``record_id`` its id."""
    raw = f"get({name!r})"
    if kind is str:
        return f"{raw} or ''"
    if kind == str | None:
        return raw if name in _EMPTY_IS_TEXT else f"{raw} or None"
    if isinstance(kind, type) and issubclass(kind, LenientEnum):
        # The members' own spellings straight from a dict; anything else through the lenient parse.
        names[f"members_{kind.__name__}"] = {m.value: m for m in kind}
        names[f"parse_{kind.__name__}"] = kind.parse
        return f"members_{kind.__name__}.get({raw}) or parse_{kind.__name__}({raw})"
    if kind is int:
        return f"_uint({raw})"
    if kind == int | None:
        return f"_uint({raw}) or None"
    if kind is datetime:
        return f"parse_time({raw}) or {'utc_now()' if name in _MISSING_IS_NOW else 'created'}"
    if kind == datetime | None:
        return f"parse_time({raw})"
    if kind == list[str]:
        return f"_tags({raw}, record_id)"
    raise TypeError(f"no hash reader for field {name!r} of type {kind!r}")


def hash_decoder(record: type[R]) -> Callable[[Mapping[str, str]], R | None]:
    """What reads a ``record`` struct from its hash, every field by its type (see :func:`_reading`), so
    a new record field needs no decoding code of its own. An empty hash or one without an id reads as
    ``None`` (upstream cannot parse such a record either).

    The reading of every field is compiled into one function per record type: listings decode
    thousands of records per request, and a call per field was most of their cost."""
    names: dict[str, object] = {"record": record, "parse_time": parse_time, "utc_now": utc_now,
                                "_uint": _uint, "_tags": _tags}
    fields = "".join(f"        {f.name}={_reading(f.name, f.type, names)},\n"
                     for f in msgspec.structs.fields(record) if f.name not in _HEAD_FIELDS)
    source = ("def decode(h):\n"
              "    get = h.get\n"
              "    record_id = get('id')\n"
              "    if not record_id:\n"
              "        return None\n"
              "    created = parse_time(get('created_at')) or utc_now()\n"
              f"    return record(\n        id=record_id,\n        created_at=created,\n{fields}    )\n")
    exec(compile(source, f"<hash decoder of {record.__name__}>", "exec"), names)  # noqa: S102
    decode: Callable[[Mapping[str, str]], R | None] = names["decode"]  # type: ignore[assignment]
    return decode


class RememberingDecoder(Generic[R]):
    """Reads ``record`` (a frozen struct) from the values of an ``HMGET`` of ``fields`` as
    :func:`hash_decoder` does, and remembers what each list of values read as: a listing reads the same
    unchanged agents on every request, and a lookup costs a fifth of reading one.

    The values are the key, so a changed record is a new key: nothing read can be stale. A record
    whose ``created_at`` does not parse is not remembered (it reads as the time it is read). At most
    ``cap`` are kept; past it, all are forgotten at once (a town larger than that reads as it would
    without this)."""

    def __init__(self, record: type[R], fields: Sequence[str], cap: int = 8192) -> None:
        self._decode = hash_decoder(record)
        self._fields = tuple(fields)
        self._created = self._fields.index("created_at")
        self._cap = cap
        self._seen: dict[tuple[Any, ...], R] = {}

    def __call__(self, values: Sequence[str | None]) -> R | None:
        key = tuple(values)
        found = self._seen.get(key)
        if found is not None:
            return found
        decoded = self._decode(dict(zip(self._fields, values)))
        if decoded is not None and parse_time(values[self._created]) is not None:
            if len(self._seen) >= self._cap:
                self._seen.clear()
            self._seen[key] = decoded
        return decoded


def task_tags(raw: str | None, task_id: str) -> list[str]:
    """A task's ``tags`` field (a JSON list); unreadable tags are logged and read as none."""
    return _tags(raw, task_id)


def _tags(raw: str | None, record_id: str) -> list[str]:
    if not raw:
        return []
    try:
        tags = msgspec.json.decode(raw, type=list[str])
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.warning("task %s: unreadable tags %r, treating as none", record_id, raw)
        return []
    return tags


agent_from_hash = hash_decoder(Agent)
task_from_hash = hash_decoder(Task)
