"""The audit log: one structured line per mutating ``/v1`` request and per 401/403/429, on logger
``townhall.audit`` (and optionally a JSON-lines file that rotates). Credentials and bodies are never
logged; line separators and control characters a client put in the path are escaped."""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

import msgspec
from litestar.types import Message, Scope

from townhall.config import AuditConfig
from townhall.problems import request_id_of, server_request_id_of

audit_log = logging.getLogger("townhall.audit")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Refusals: audited whatever the request (the envelope decides which responses get a line).
REFUSALS = frozenset({401, 403, 429})


class AuditRecord(msgspec.Struct, omit_defaults=True):
    request_id: str
    principal: str
    method: str
    path: str
    status: int
    outcome: str
    #: The server's own id for the request: ``request_id`` may be the client's ``X-Request-ID``.
    server_request_id: str = ""


_encoder = msgspec.json.Encoder()
# JSON escapes C0 controls already; these still end a line for some readers (U+2028/2029 in
# JavaScript, NEL U+0085 and the other C1 controls in Python's str.splitlines and some terminals).
_LINE_BREAKERS = re.compile("[\u007f-\u009f\u2028\u2029]")


def _escaped(line: str) -> str:
    return _LINE_BREAKERS.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def outcome_of(status: int) -> str:
    if status in (401, 403):
        return "denied"
    if status == 429:
        return "limited"
    return "success" if status < 400 else "error"


def audit_response(message: Message, scope: Scope) -> None:
    """The audit line of a response start the envelope audits: a refusal (:data:`REFUSALS`), or an
    answer to a request that changes the town (:data:`MUTATING` ``/v1``)."""
    status = message["status"]
    method = scope.get("method", "")
    path = scope.get("path", "")
    user = scope.get("user")
    record = AuditRecord(
        request_id=request_id_of(scope),
        server_request_id=server_request_id_of(scope),
        principal=getattr(user, "id", None) or "anonymous",
        method=method,
        path=path,
        status=status,
        outcome=outcome_of(status),
    )
    level = logging.INFO if record.outcome == "success" else logging.WARNING
    audit_log.log(level, _escaped(_encoder.encode(record).decode()))


def attach_audit_file(path: Path, config: AuditConfig | None = None) -> None:
    """Also write audit lines (bare JSON, one per line) to ``path``, rotated as ``config`` says:
    by size (``max_bytes``) or by time (``rotate_when``), keeping ``backup_count`` old files."""
    config = config or AuditConfig()
    path.parent.mkdir(parents=True, exist_ok=True)
    resolved = str(path.resolve())
    if any(getattr(h, "baseFilename", None) == resolved for h in audit_log.handlers):
        return
    handler: logging.FileHandler
    if config.rotate_when:
        handler = logging.handlers.TimedRotatingFileHandler(
            resolved, when=config.rotate_when, backupCount=config.backup_count, encoding="utf-8", utc=True)
    else:
        handler = logging.handlers.RotatingFileHandler(
            resolved, maxBytes=config.max_bytes, backupCount=config.backup_count, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    audit_log.addHandler(handler)
    audit_log.setLevel(logging.INFO)
