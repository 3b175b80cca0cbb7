"""The audit log: one structured line per mutating ``/v1`` request and per 401/403, on logger
``townhall.audit`` (and optionally a JSON-lines file). Credentials and bodies are never logged."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
from litestar.types import Message, Scope

from townhall.problems import request_id_of

audit_log = logging.getLogger("townhall.audit")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class AuditRecord(msgspec.Struct):
    request_id: str
    principal: str
    method: str
    path: str
    status: int
    outcome: str


_encoder = msgspec.json.Encoder()


def outcome_of(status: int) -> str:
    if status in (401, 403):
        return "denied"
    if status == 429:
        return "limited"
    return "success" if status < 400 else "error"


async def audit_response(message: Message, scope: Scope) -> None:
    """``before_send`` hook: sees every response, including those of failed authentication."""
    if message["type"] != "http.response.start":
        return
    status = message["status"]
    method = scope.get("method", "")
    path = scope.get("path", "")
    if not (status in (401, 403) or (method in MUTATING and path.startswith("/v1"))):
        return
    user = scope.get("user")
    record = AuditRecord(
        request_id=request_id_of(scope),
        principal=getattr(user, "id", None) or "anonymous",
        method=method,
        path=path,
        status=status,
        outcome=outcome_of(status),
    )
    level = logging.INFO if record.outcome == "success" else logging.WARNING
    audit_log.log(level, _encoder.encode(record).decode())


def attach_audit_file(path: Path) -> None:
    """Also write audit lines (bare JSON, one per line) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    resolved = str(path.resolve())
    if any(getattr(h, "baseFilename", None) == resolved for h in audit_log.handlers):
        return
    handler = logging.FileHandler(resolved, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
