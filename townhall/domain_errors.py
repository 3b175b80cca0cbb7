"""Domain exceptions raised by services and mapped to problem details in one place
(:mod:`townhall.http.errors`), and the one notion of "Redis is not answering" shared by the HTTP app,
the CLI and the worker.

Messages keep upstream's wording where clients may match on it (``Agent not found: {ref}``).
"""

from __future__ import annotations

from typing import Sequence

import redis.exceptions

#: redis-py's errors that mean Redis is not answering right now (connection refused or dropped, a
#: timeout, a server still loading its dataset): the same call may succeed later, so callers answer
#: 503 / back off and retry. Other ``RedisError``s (e.g. a ``ResponseError``) are not outages.
REDIS_OUTAGE_ERRORS: tuple[type[redis.exceptions.RedisError], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


class NotReplicated(redis.exceptions.ConnectionError):
    """The primary applied a write but fewer than ``[redis] wait_replicas`` replicas confirmed it within
    ``wait_timeout_ms``: a failover now could lose it, so it is not acknowledged. Counted as an outage
    (a ``ConnectionError``): the caller gets 503 and may retry, a worker retries by itself; the write
    may still survive, so a retried creation can leave a second task (docs/high-availability.md)."""

    def __init__(self, wanted: int, confirmed: int, timeout_ms: int) -> None:
        super().__init__(f"write confirmed by {confirmed} of the {wanted} replica(s) required within {timeout_ms} ms")


class RedisUnavailable(Exception):
    """Redis is not answering (one of :data:`REDIS_OUTAGE_ERRORS`); ``cause`` is redis-py's error.

    Not a :class:`DomainError`: nothing is wrong with the request, it may succeed when Redis is back."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"Redis unavailable: {cause}")
        self.cause = cause


class DomainError(Exception):
    """Base class: something the caller asked for cannot be done as asked."""


class PresetNotAllowed(DomainError):
    """The caller may not target this CLI preset (its ``allowed_scopes`` in ``[agent_clis]``)."""

    def __init__(self, preset: str, allowed: list[str]) -> None:
        scopes = [*allowed, *([] if "admin" in allowed else ["admin"])]
        super().__init__(f"CLI preset '{preset}' may only be targeted by callers with scope "
                         f"{' or '.join(repr(s) for s in scopes)}")
        self.preset = preset


class NotFound(DomainError):
    """What the caller named does not exist; ``ident`` is the name or id asked for. Subclasses only say
    what it was, in upstream's wording (``template``)."""

    template = "{} not found"

    def __init__(self, ident: str) -> None:
        super().__init__(self.template.format(ident))
        self.ident = ident


class AgentNotFound(NotFound):
    template = "Agent not found: {}"


class AmbiguousAgent(DomainError):
    def __init__(self, ref: str, candidates: Sequence[str]) -> None:
        # candidates are pre-rendered "{label} ({short})" strings, as upstream lists them.
        super().__init__(f"Agent reference '{ref}' is ambiguous: {', '.join(candidates)}")
        self.ref = ref
        self.candidates = list(candidates)


class AmbiguousId(DomainError):
    """An id prefix matches several records (``candidates``: their ids, each with a hint)."""

    def __init__(self, what: str, prefix: str, candidates: Sequence[str]) -> None:
        super().__init__(f"{what} id prefix '{prefix}' is ambiguous: {', '.join(candidates)}")
        self.prefix = prefix
        self.candidates = list(candidates)


class TaskNotFound(NotFound):
    template = "Task not found: {}"


class LogNotFound(NotFound):
    """No log to serve: none was written on this machine, or the file lies outside the town's log
    folder (the message says which, never where it points)."""

    template = "{}"


class MissionNotFound(NotFound):
    template = "mission {} not found"


class BacklogTaskGone(NotFound):
    """The task is no longer in the backlog (claimed, assigned or removed by someone else)."""

    template = "Task {} not found in backlog"


class InvalidInput(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Conflict(DomainError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AgentDown(Conflict):
    """Work was handed to a ``Stopped``/``Error`` agent: no worker would take it."""

    def __init__(self, name: str, state: str) -> None:
        super().__init__(
            f"agent '{name}' is {state} and takes no work until it is restarted: restart it "
            f"(POST /v1/agents/{name}/restart, `tt restart {name}`) or hand over the work with ?start=true "
            f"(`tt assign --start`), which restarts it first"
        )
        self.name = name
        self.state = state
