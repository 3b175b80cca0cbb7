"""Recovery bodies: recover, reclaim and orphan tasks."""

from __future__ import annotations

import msgspec

from townhall.services.recovery import OrphanReport, ReclaimReport, RecoverReport


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


class ReclaimResponse(msgspec.Struct):
    reclaimed: int
    #: ``backlog``, ``listed`` or ``agent:<id>``.
    destination: str
    items: list[ReclaimItem]

    @classmethod
    def of(cls, report: ReclaimReport) -> ReclaimResponse:
        return cls(
            reclaimed=report.reclaimed, destination=report.destination,
            items=[ReclaimItem(from_agent=i.from_agent, message_id=i.message_id, type=i.type, task_id=i.task_id,
                               description=i.description) for i in report.items],
        )


class OrphanItem(msgspec.Struct):
    task_id: str
    assigned_to: str
    state: str
    reason: str


class OrphanResponse(msgspec.Struct):
    action: str
    count: int
    orphans: list[OrphanItem]

    @classmethod
    def of(cls, report: OrphanReport) -> OrphanResponse:
        return cls(
            action=report.action.value, count=report.count,
            orphans=[OrphanItem(task_id=o.task_id, assigned_to=o.assigned_to, state=o.state, reason=o.reason)
                     for o in report.orphans],
        )
