"""Recovery bodies: recover, reclaim and orphan tasks."""

from __future__ import annotations

import msgspec

from townhall.services.recovery import RecoverReport
from townhall.views.copied import Copied


class RecoverResponse(msgspec.Struct):
    checked: int
    recovered: int
    agents: list[str]

    @classmethod
    def of(cls, report: RecoverReport) -> RecoverResponse:
        return cls(checked=report.checked, recovered=len(report.recovered), agents=[a.name for a in report.recovered])


class ReclaimItem(msgspec.Struct):
    from_agent: str
    message_id: str
    type: str
    task_id: str | None
    description: str


# What :class:`townhall.services.recovery.ReclaimReport` holds.
class ReclaimResponse(Copied):
    reclaimed: int
    #: ``backlog``, ``listed`` or ``agent:<id>``.
    destination: str
    items: list[ReclaimItem]


class OrphanItem(msgspec.Struct):
    task_id: str
    assigned_to: str
    state: str
    reason: str


# What :class:`townhall.services.recovery.OrphanReport` holds.
class OrphanResponse(Copied):
    action: str
    count: int
    orphans: list[OrphanItem]

