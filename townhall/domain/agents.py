"""Agent records (reference §3.1): states, kinds, the record, and the rules of names."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import msgspec

from townhall.domain.ids import new_id
from townhall.domain.lenient import LenientEnum
from townhall.domain.nicknames import NICKNAMES
from townhall.domain.timestamps import utc_now

#: The well-known mailbox of the supervisor (the conductor); it has no agent record.
SUPERVISOR_ID = "00000000-0000-0000-0000-000000000001"
#: Names that address the supervisor mailbox, so no agent may take them (any case).
RESERVED_AGENT_NAMES = frozenset({"supervisor", "conductor"})
#: Agent names become file names (``.tt/logs/<name>...``) and CLI arguments, so they keep to a safe
#: alphabet: no path separator, no leading dot or dash (no ``..``, no option), at most 64 characters.
AGENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_AGENT_NAME_CHARS = 64
_AGENT_NAME = re.compile(AGENT_NAME_PATTERN)


# Upstream reads any unknown (or missing) state as ``starting``; so do we.
class AgentState(LenientEnum, fallback="starting", terminal=("cold", "stopped", "error")):
    COLD = "cold"
    STARTING = "starting"
    IDLE = "idle"
    WORKING = "working"
    PAUSED = "paused"
    DRAINING = "draining"
    STOPPED = "stopped"
    ERROR = "error"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_AGENT_STATES

    @property
    def can_accept_work(self) -> bool:
        return self is AgentState.IDLE

    #: The PascalCase spelling REST bodies use (``Idle``). An attribute of each member (set below), not
    #: a property: listings read it for every agent.
    rest_name: str


for _state in AgentState:
    _state.rest_name = _state.value.capitalize()

ACTIVE_AGENT_STATES = frozenset(
    {AgentState.STARTING, AgentState.IDLE, AgentState.WORKING, AgentState.PAUSED, AgentState.DRAINING}
)
#: States without a worker; only from these can an agent be restarted.
TERMINAL_AGENT_STATES = AgentState.terminal_states()
#: Terminal states that are not merely scaled to zero: such an agent takes no work until restarted, and
#: reclaim takes work out of its mailbox.
DEAD_AGENT_STATES = frozenset({AgentState.STOPPED, AgentState.ERROR})


class AgentType(LenientEnum, fallback="worker"):
    WORKER = "worker"
    SUPERVISOR = "supervisor"


class SpawnMode(LenientEnum, fallback="fresh"):
    FRESH = "fresh"
    FORKED_CONTEXT = "forkedcontext"
    RESUMED = "resumed"


class Agent(msgspec.Struct, kw_only=True):
    """An agent record (``tt:{town}:agent:{id}``), as the original ``tt`` writes it."""

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
    #: The pool prefix of an agent a pool worker registered for itself (``townhall worker`` without a
    #: name): such a record lives only as long as its worker. ``None`` for named agents.
    pool: str | None = None

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


def is_safe_agent_name(name: object) -> bool:
    """Whether ``name`` may be used in a path or a command line. Names come from Redis, which other
    tools write too: check every one before it becomes a file name or an argument."""
    return isinstance(name, str) and len(name) <= MAX_AGENT_NAME_CHARS and _AGENT_NAME.match(name) is not None


def is_reserved_agent_name(name: str) -> bool:
    return name.strip().lower() in RESERVED_AGENT_NAMES


def nickname_for(agent_id: str) -> str:
    """Deterministic display name: first two UUID bytes, big-endian, modulo 400 (upstream rule)."""
    try:
        raw = uuid.UUID(agent_id).bytes
    except ValueError:
        raw = agent_id.encode()[:2].ljust(2, b"\0")
    return NICKNAMES[int.from_bytes(raw[:2], "big") % len(NICKNAMES)]
