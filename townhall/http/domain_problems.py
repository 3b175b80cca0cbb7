"""Domain exceptions → problem details status codes (contract §4.2). Importing this module registers
the mappings with :mod:`townhall.problems`."""

from __future__ import annotations

from typing import Any

from townhall.domain_errors import (
    AgentNotFound,
    AmbiguousAgent,
    BacklogTaskGone,
    Conflict,
    InvalidInput,
    MissionNotFound,
    TaskNotFound,
)
from townhall.problems import FieldError, register_domain_error


def _candidates(exc: Exception) -> dict[str, Any]:
    assert isinstance(exc, AmbiguousAgent)
    return {"candidates": exc.candidates}


def _field(exc: Exception) -> dict[str, Any]:
    assert isinstance(exc, InvalidInput)
    return {"errors": [FieldError(field=exc.field, message=exc.message)]}


for _not_found in (AgentNotFound, TaskNotFound, MissionNotFound, BacklogTaskGone):
    register_domain_error(_not_found, 404)
register_domain_error(AmbiguousAgent, 409, extra=_candidates)
register_domain_error(Conflict, 409)
register_domain_error(InvalidInput, 422, extra=_field)
