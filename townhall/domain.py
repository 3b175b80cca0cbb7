"""Town records as upstream tinytown 0.10 defines them (reference §3), as msgspec types.

Only the store knows how these are laid out in Redis; this module holds the records, their states
and the small rules that belong to the records themselves (predicates, display names, message
summaries). Identifiers are kept as UUID strings because that is how every Redis key and JSON body
carries them.
"""

from __future__ import annotations

import enum
import re
import uuid
from datetime import datetime, timezone
from typing import Any, ClassVar, Union

import msgspec

from townhall.keys import SUPERVISOR_ID as SUPERVISOR_ID  # re-exported for services

# ---------------------------------------------------------------------------------------------
# Time: hashes carry `+00:00` offsets, JSON documents carry `Z`; upstream (chrono) writes up to 9
# fractional digits, which Python's datetime cannot hold, so readers truncate to microseconds.
# ---------------------------------------------------------------------------------------------

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
    raw = _FRACTION.sub(r"\1", text.strip())
    if raw.endswith(("z", "Z")):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return _as_utc(parsed)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def new_id() -> str:
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------------------------
# Agents
# ---------------------------------------------------------------------------------------------


class AgentState(str, enum.Enum):
    COLD = "cold"
    STARTING = "starting"
    IDLE = "idle"
    WORKING = "working"
    PAUSED = "paused"
    DRAINING = "draining"
    STOPPED = "stopped"
    ERROR = "error"

    @classmethod
    def parse(cls, value: str | None) -> AgentState:
        """Upstream reads any unknown (or missing) state as ``starting``; so do we."""
        try:
            return cls((value or "").strip().lower())
        except ValueError:
            return cls.STARTING

    @property
    def is_active(self) -> bool:
        return self in _ACTIVE_AGENT_STATES

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_AGENT_STATES

    @property
    def can_accept_work(self) -> bool:
        return self is AgentState.IDLE

    @property
    def rest_name(self) -> str:
        """The PascalCase spelling REST bodies use (``Idle``)."""
        return self.value.capitalize()


_ACTIVE_AGENT_STATES = frozenset(
    {AgentState.STARTING, AgentState.IDLE, AgentState.WORKING, AgentState.PAUSED, AgentState.DRAINING}
)
_TERMINAL_AGENT_STATES = frozenset({AgentState.COLD, AgentState.STOPPED, AgentState.ERROR})


class AgentType(str, enum.Enum):
    WORKER = "worker"
    SUPERVISOR = "supervisor"

    @classmethod
    def parse(cls, value: str | None) -> AgentType:
        try:
            return cls((value or "").strip().lower())
        except ValueError:
            return cls.WORKER


class SpawnMode(str, enum.Enum):
    FRESH = "fresh"
    FORKED_CONTEXT = "forkedcontext"
    RESUMED = "resumed"

    @classmethod
    def parse(cls, value: str | None) -> SpawnMode:
        try:
            return cls((value or "").strip().lower())
        except ValueError:
            return cls.FRESH


RESERVED_AGENT_NAMES = frozenset({"supervisor", "conductor"})


class Agent(msgspec.Struct, kw_only=True):
    id: str
    name: str
    cli: str = ""
    nickname: str | None = None
    role_id: str | None = None
    parent_agent_id: str | None = None
    spawn_mode: SpawnMode = SpawnMode.FRESH
    agent_type: AgentType = AgentType.WORKER
    state: AgentState = AgentState.STARTING
    current_task: str | None = None
    created_at: datetime = msgspec.field(default_factory=utc_now)
    last_heartbeat: datetime = msgspec.field(default_factory=utc_now)
    last_active_at: datetime = msgspec.field(default_factory=utc_now)
    tasks_completed: int = 0
    rounds_completed: int = 0

    @classmethod
    def new(cls, name: str, cli: str, *, agent_id: str | None = None) -> Agent:
        """A fresh record as ``Town::spawn_agent`` makes it: Starting, auto nickname, timestamps now."""
        aid = agent_id or new_id()
        now = utc_now()
        return cls(
            id=aid,
            name=name,
            cli=cli,
            nickname=nickname_for(aid),
            created_at=now,
            last_heartbeat=now,
            last_active_at=now,
        )

    @property
    def display_name(self) -> str:
        return self.nickname or self.name

    @property
    def display_label(self) -> str:
        # Upstream puts the agent's *name* in the brackets when the role is absent or "default".
        role = self.role_id if self.role_id and self.role_id != "default" else self.name
        return f"{self.display_name} [{role}]"

    @property
    def short_id(self) -> str:
        return self.id[:4]


def is_reserved_agent_name(name: str) -> bool:
    return name.strip().lower() in RESERVED_AGENT_NAMES


def nickname_for(agent_id: str) -> str:
    """Deterministic display name: first two UUID bytes, big-endian, modulo 400 (upstream rule)."""
    try:
        raw = uuid.UUID(agent_id).bytes
    except ValueError:
        raw = agent_id.encode()[:2].ljust(2, b"\0")
    return NICKNAMES[int.from_bytes(raw[:2], "big") % len(NICKNAMES)]


# ---------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------


class TaskState(str, enum.Enum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def parse(cls, value: str | None) -> TaskState:
        """``in_flight`` is an upstream alias of ``running``; unknown values read as ``pending``."""
        text = (value or "").strip().lower()
        if text == "in_flight":
            return cls.RUNNING
        try:
            return cls(text)
        except ValueError:
            return cls.PENDING

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_TASK_STATES


TERMINAL_TASK_STATES = frozenset({TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED})
OPEN_TASK_STATES = (TaskState.PENDING, TaskState.ASSIGNED, TaskState.RUNNING)


class Task(msgspec.Struct, kw_only=True):
    id: str
    description: str = ""
    state: TaskState = TaskState.PENDING
    assigned_to: str | None = None
    created_at: datetime = msgspec.field(default_factory=utc_now)
    updated_at: datetime = msgspec.field(default_factory=utc_now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    result: str | None = None
    parent_id: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)

    @classmethod
    def new(
        cls,
        description: str,
        *,
        tags: list[str] | None = None,
        state: TaskState = TaskState.PENDING,
        assigned_to: str | None = None,
        parent_id: str | None = None,
    ) -> Task:
        now = utc_now()
        return cls(
            id=new_id(),
            description=description,
            state=state,
            assigned_to=assigned_to,
            created_at=now,
            updated_at=now,
            parent_id=parent_id,
            tags=list(tags or []),
        )


# ---------------------------------------------------------------------------------------------
# Messages: internally tagged JSON (`type` at top level, variant fields flattened beside id/from/to).
# ---------------------------------------------------------------------------------------------


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

    def to_json(self) -> str:
        return encode_message(self)


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


# ---------------------------------------------------------------------------------------------
# Missions: the dispatcher owns most of the record; we keep its raw JSON and change only our fields.
# ---------------------------------------------------------------------------------------------


class MissionState(str, enum.Enum):
    PLANNING = "planning"
    RUNNING = "running"
    BLOCKED = "blocked"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (MissionState.COMPLETED, MissionState.FAILED)


class MissionPolicy(msgspec.Struct, kw_only=True):
    max_parallel_items: int = 2
    reviewer_required: bool = True
    auto_merge: bool = False
    watch_interval_secs: int = 180


class IssueObjective(msgspec.Struct, tag_field="type", tag="issue"):
    owner: str
    repo: str
    number: int


class DocObjective(msgspec.Struct, tag_field="type", tag="doc"):
    path: str


ObjectiveRef = Union[IssueObjective, DocObjective]


class Mission(msgspec.Struct, kw_only=True):
    """The fields of ``MissionRun`` townhall reads or changes. The full stored document travels in
    ``raw`` so that saving never drops what the dispatcher wrote."""

    id: str
    state: MissionState
    objective_refs: list[ObjectiveRef] = msgspec.field(default_factory=list)
    policy: MissionPolicy = msgspec.field(default_factory=MissionPolicy)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    next_wake_at: datetime | None = None
    blocked_reason: str | None = None
    dispatcher_last_tick_at: datetime | None = None
    dispatcher_last_progress_at: datetime | None = None
    dispatcher_last_help_request_at: datetime | None = None
    dispatcher_last_help_request_reason: str | None = None
    dispatcher_help_request_attempts: int = 0
    raw: dict[str, Any] = msgspec.field(default_factory=dict)

    def clear_help_requests(self) -> None:
        self.dispatcher_last_help_request_at = None
        self.dispatcher_last_help_request_reason = None
        self.dispatcher_help_request_attempts = 0


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
        doc[name] = _mission_enc(value)
    return msgspec.json.encode(doc).decode()


def _mission_enc(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_json_time(value)
    return msgspec.to_builtins(value)


# ---------------------------------------------------------------------------------------------
# Town events (reference §3.6): JSON stored in the ``data`` field of stream entries.
# ---------------------------------------------------------------------------------------------


class TownEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    event_type: str  # snake_case, e.g. agent_interrupted, mission_event
    message: str
    timestamp: datetime = msgspec.field(default_factory=utc_now)
    agent_id: str | None = None
    task_id: str | None = None
    mission_id: str | None = None
    old_state: str | None = None
    new_state: str | None = None
    parent_agent_id: str | None = None
    child_agent_id: str | None = None
    scope: str | None = None
    spawn_mode: str | None = None


# ---------------------------------------------------------------------------------------------
# Nicknames. Upstream ships a list of 200 popular 1920s US boys' names then 200 girls' names in
# src/agent.rs; that exact list is not available to us, so this is our own list of the same shape
# (names popular in the 1920s per US birth records). The *index* derivation matches upstream, so a
# stored nickname may differ from the one upstream would pick for the same UUID — harmless, since the
# nickname is written into the record at creation and read back from there.
# ---------------------------------------------------------------------------------------------

_BOYS_1920S = """
    Robert John James William Charles George Joseph Richard Edward Donald Thomas Frank Harold Paul
    Raymond Walter Jack Henry Kenneth Arthur Albert David Harry Eugene Ralph Howard Carl Willie
    Louis Clarence Earl Roy Fred Joe Francis Lawrence Herbert Leonard Ernest Alfred Anthony Stanley
    Norman Gerald Daniel Samuel Bernard Billy Melvin Marvin Warren Michael Leroy Russell Leo Andrew
    Edwin Elmer Peter Floyd Lloyd Ray Frederick Theodore Clifford Vernon Herman Clyde Chester Philip
    Alvin Lester Wayne Vincent Gordon Leon Lewis Charlie Glenn Calvin Martin Milton Lee Jesse Dale
    Cecil Bill Harvey Roger Victor Benjamin Wallace Ted Edgar Allen Manuel Lyle Jerome Gene Jimmie
    Johnnie Sam Sidney Everett Oscar Morris Willard Leslie Marion Wilbur Curtis Irving Virgil Jerry
    Jim Max Hubert Tom Homer Maurice Luther Alex Steve Nicholas Dean Glen Bobby Jose Douglas
    Franklin Arnold Edmund Otis Claude Hugh Ben Dennis Jacob Roland Wesley Wilbert Lowell Stephen
    Willis Horace Emil Orville Julius Nathan Karl Julian Guy Lynn Earnest Aaron Tony Dan Harley
    Rudolph Alton Ira Delbert Ervin Wilfred Bert Rex Ellis Sherman Jay Dewey Matthew Archie Grover
    Irvin Patrick Juan Roscoe Alexander Merle Mack Felix Kermit Jimmy Johnny Austin Eddie Allan
    Leland Troy Forrest Conrad Morton Emmett Elbert Ronald Louie Frankie Mario Lonnie Carroll
""".split()

_GIRLS_1920S = """
    Mary Dorothy Helen Betty Margaret Ruth Virginia Doris Mildred Frances Elizabeth Evelyn Anna
    Marie Alice Jean Shirley Barbara Irene Marjorie Florence Lois Martha Rose Lillian Louise
    Catherine Ruby Eleanor Patricia Gladys Annie Josephine Thelma Edna Norma Pauline Lucille Edith
    Ethel Phyllis Hazel Gloria Grace Juanita Bernice Geraldine Beatrice Clara Esther Emma Joan
    Lorraine Elsie Jane Joyce Gertrude Marian Wilma Agnes Peggy Bertha Ann Vera Pearl Jessie Loretta
    Eva Genevieve Marion Kathryn Laura Nancy Ida Viola Arlene Vivian Audrey Jeanne Willie Rita
    Stella Charlotte Katherine Ella Caroline Lucy Minnie Sarah Eileen Maxine Bessie Myrtle Leona
    Alma Violet Harriet Nellie Mabel Georgia Marilyn Lola Opal Rosemary Wanda Mae Christine Margie
    Maria Geneva Sylvia Rosie Hilda Inez Lorene Rosa Muriel Nora Jeanette Mattie Fern Dolores Ellen
    Betsy Regina Hattie Alberta Eunice Anne Carolyn Sally Verna Constance Lena Sophie Harriett
    Blanche Winifred Maggie Donna Velma Carrie Dora Kathleen Beulah Ada Claire Mamie Olive Carol
    Imogene Erma Bettie Flora Cora Iris Maude Eula Goldie Roberta Lula Naomi Tillie Billie Mable
    Della Laverne Rachel Leah Cecilia Gwendolyn Nina Miriam Ina Colleen Janet Bonnie Lottie Effie
    Estelle Amelia Lila Ola Sue Henrietta Faye Essie Ollie Claudia Letha Nadine Lydia Ramona Jewel
    Daisy Katie Rosalie Marguerite Theresa Josie
""".split()

NICKNAMES: tuple[str, ...] = tuple(_BOYS_1920S + _GIRLS_1920S)
assert len(_BOYS_1920S) == 200 and len(_GIRLS_1920S) == 200
