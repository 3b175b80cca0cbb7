"""Domain exceptions raised by services and mapped to problem details in one place (the HTTP layer).

Messages keep upstream's wording where clients may match on it (``Agent not found: {ref}``).
"""

from __future__ import annotations

from typing import Sequence


class DomainError(Exception):
    """Base class: something the caller asked for cannot be done as asked."""


class AgentNotFound(DomainError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"Agent not found: {ref}")
        self.ref = ref


class AmbiguousAgent(DomainError):
    def __init__(self, ref: str, candidates: Sequence[str]) -> None:
        # candidates are pre-rendered "{label} ({short})" strings, as upstream lists them.
        super().__init__(f"Agent reference '{ref}' is ambiguous: {', '.join(candidates)}")
        self.ref = ref
        self.candidates = list(candidates)


class TaskNotFound(DomainError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task not found: {task_id}")
        self.task_id = task_id


class MissionNotFound(DomainError):
    def __init__(self, mission_id: str) -> None:
        super().__init__(f"mission {mission_id} not found")
        self.mission_id = mission_id


class BacklogTaskGone(DomainError):
    """The task is no longer in the backlog (claimed, assigned or removed by someone else)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Task {task_id} not found in backlog")
        self.task_id = task_id


class InvalidInput(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Conflict(DomainError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
