"""Messages (reference §3.3): the entries of agent mailboxes.

On the wire a message is internally tagged JSON (``type`` at top level, the body's fields flattened
beside id/from/to); the body structs carry their ``type`` as msgspec tags. Encoding and decoding the
stored documents is the store's job (:mod:`townhall.store.json_codec`).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar, Union

import msgspec

from townhall.domain.ids import new_id
from townhall.domain.timestamps import utc_now


class Priority(str, enum.Enum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]

    @property
    def goes_to_front(self) -> bool:
        """Upstream's generic send LPUSHes high/urgent to the front of the regular inbox."""
        return self.rank >= _PRIORITY_RANK[Priority.HIGH]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank >= other.rank


_PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class _Ack(msgspec.Struct, tag_field="type"):
    debug_name: ClassVar[str] = ""

    def render(self) -> str:
        """Rust's ``Debug`` rendering, which upstream shows as the inbox summary."""
        return self.debug_name


class AckReceived(_Ack, tag="received"):
    debug_name: ClassVar[str] = "Received"


class AckAcknowledged(_Ack, tag="acknowledged"):
    debug_name: ClassVar[str] = "Acknowledged"


class AckThanks(_Ack, tag="thanks"):
    debug_name: ClassVar[str] = "Thanks"


class AckApproved(_Ack, tag="approved"):
    debug_name: ClassVar[str] = "Approved"


class AckRejected(_Ack, tag="rejected"):
    reason: str = ""

    def render(self) -> str:
        return f"Rejected {{ reason: {_rust_debug_str(self.reason)} }}"


AckType = Union[AckReceived, AckAcknowledged, AckThanks, AckApproved, AckRejected]


def ack_from_text(text: str) -> AckType:
    """REST send kind ``ack``: map free text to a confirmation type (reference §3.3)."""
    lowered = text.strip().lower()
    if lowered.startswith("rejected:"):
        reason = text.strip().split(":", 1)[1].strip()
        return AckRejected(reason=reason or "No reason provided")
    if lowered.startswith("received"):
        return AckReceived()
    if lowered.startswith("approved"):
        return AckApproved()
    if "thanks" in lowered or "thank you" in lowered:
        return AckThanks()
    return AckAcknowledged()


def _rust_debug_str(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped.replace(chr(13), chr(92) + "r")}"'


class _Body(msgspec.Struct, tag_field="type"):
    def summary(self) -> str:
        return str(self.__struct_config__.tag)

    def type_label(self) -> str:
        return str(self.__struct_config__.tag)


class TaskBody(_Body, tag="task"):
    description: str

    def summary(self) -> str:
        return self.description


class QueryBody(_Body, tag="query"):
    question: str

    def summary(self) -> str:
        return self.question


class InformationalBody(_Body, tag="informational"):
    summary_text: str = msgspec.field(name="summary")

    def summary(self) -> str:
        return self.summary_text

    def type_label(self) -> str:
        return "info"


class ConfirmationBody(_Body, tag="confirmation"):
    ack_type: AckType

    def summary(self) -> str:
        return self.ack_type.render()


class TaskAssignBody(_Body, tag="task_assign"):
    task_id: str

    def summary(self) -> str:
        return f"task assignment {self.task_id}"


class TaskDoneBody(_Body, tag="task_done"):
    task_id: str
    result: str

    def summary(self) -> str:
        return f"done {self.task_id}: {self.result}"


class TaskFailedBody(_Body, tag="task_failed"):
    task_id: str
    error: str

    def summary(self) -> str:
        return f"failed {self.task_id}: {self.error}"


class StatusRequestBody(_Body, tag="status_request"):
    def summary(self) -> str:
        return "status request"


class PingBody(_Body, tag="ping"):
    pass


class PongBody(_Body, tag="pong"):
    pass


class ShutdownBody(_Body, tag="shutdown"):
    pass


class StatusResponseBody(_Body, tag="status_response"):
    # Upstream's agent state enum as the worker serialises it; kept verbatim.
    state: str
    current_task: str | None = None

    def summary(self) -> str:
        return f"status: {self.state}"


class CustomBody(_Body, tag="custom"):
    kind: str
    payload: Any = ""

    def summary(self) -> str:
        payload = self.payload if isinstance(self.payload, str) else msgspec.json.encode(self.payload).decode()
        return f"[{self.kind}] {payload}"

    def type_label(self) -> str:
        return f"custom:{self.kind}"


MessageBody = Union[
    TaskBody,
    QueryBody,
    InformationalBody,
    ConfirmationBody,
    TaskAssignBody,
    TaskDoneBody,
    TaskFailedBody,
    StatusRequestBody,
    PingBody,
    PongBody,
    ShutdownBody,
    StatusResponseBody,
    CustomBody,
]


class Message(msgspec.Struct, kw_only=True):
    """One inbox entry. ``from_`` is ``from`` on the wire."""

    id: str
    from_: str
    to: str
    body: MessageBody
    priority: Priority = Priority.NORMAL
    created_at: datetime = msgspec.field(default_factory=utc_now)
    correlation_id: str | None = None

    @classmethod
    def new(
        cls,
        sender: str,
        to: str,
        body: MessageBody,
        *,
        priority: Priority = Priority.NORMAL,
        correlation_id: str | None = None,
    ) -> Message:
        return cls(id=new_id(), from_=sender, to=to, body=body, priority=priority, correlation_id=correlation_id)

    @property
    def type(self) -> str:
        return str(self.body.__struct_config__.tag)

    def summary(self) -> str:
        return self.body.summary()

    def type_label(self) -> str:
        return self.body.type_label()
