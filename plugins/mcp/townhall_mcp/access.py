"""Who calls a tool, whether they may, and what the audit log says about it.

Each tool, resource and prompt runs inside :meth:`Gate.enter` with the scope its REST twin declares. A
caller without that scope gets a tool error (the MCP session goes on) and a ``denied`` audit line; a
domain error becomes a tool error in the service's own words, naming the argument when the input was
at fault. As on REST, calls that may write are audited whatever their outcome, reads only when denied.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, AsyncIterator, Callable

import msgspec
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from townhall.auth import Principal, Scope
from townhall.domain_errors import REDIS_OUTAGE_ERRORS, InvalidInput
from townhall.http.audit import AuditRecord, audit_log, outcome_of
from townhall.http.errors import DOMAIN_PROBLEMS

_encoder = msgspec.json.Encoder()

#: What a service may refuse with (or an outage it may meet): answered in words, never as a crash.
_EXPECTED: tuple[type[Exception], ...] = (*DOMAIN_PROBLEMS, *REDIS_OUTAGE_ERRORS)

#: Scopes whose calls change the town: audited on every outcome, as REST's mutating requests are.
_WRITING = frozenset({Scope.TOWN_WRITE, Scope.AGENT_MANAGE, Scope.ADMIN})


class Caller(msgspec.Struct, frozen=True):
    """The principal behind one MCP request, the id its audit line carries, and where it came in."""

    principal: Principal
    request_id: str
    #: The HTTP mount path (``/mcp``) or ``stdio``: the audit line's ``path`` prefix.
    channel: str


#: How a transport finds the caller of an MCP request (the HTTP mount reads the principal the guard put
#: on the HTTP request; stdio answers for the local user).
CallerOf = Callable[[ServerRequestContext[Any, Any]], Caller]

_caller: ContextVar[Caller] = ContextVar("townhall_mcp_caller")


class Gate:
    """Scope checks and audit lines for one MCP server. Its :meth:`middleware` (on the SDK server's
    middleware chain) finds the caller of each request; :meth:`enter` guards a handler's body."""

    def __init__(self, caller_of: CallerOf) -> None:
        self.caller_of = caller_of

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        # The handler runs inside call_next, in this context: static resources get no SDK context object,
        # so this is how every handler, whatever its kind, learns who is calling.
        token = _caller.set(self.caller_of(ctx))
        try:
            return await call_next(ctx)
        finally:
            _caller.reset(token)

    @asynccontextmanager
    async def enter(self, what: str, scope: Scope | None,
                    refuse: Callable[[str], Exception] = ToolError) -> AsyncIterator[Caller]:
        """Run the body as ``what`` (``tool:assign_task``, ``resource:tinytown://town``) if the caller holds
        ``scope`` (``None``: any authenticated caller, like REST's public routes). Refusals and domain
        errors are raised as ``refuse(message)``: a tool error for tools, a request error otherwise."""
        caller = _caller.get()
        audited = scope in _WRITING
        if scope is not None and not caller.principal.has(scope):
            _audit(caller, what, 403)
            raise refuse(f"Insufficient permissions: {what} needs scope '{scope.value}'")
        try:
            yield caller
        except _EXPECTED as exc:
            if audited:
                _audit(caller, what, _status_of(exc))
            raise refuse(_describe(exc)) from None
        except Exception:
            if audited:
                _audit(caller, what, 500)
            raise
        if audited:
            _audit(caller, what, 200)


def request_error(message: str) -> MCPError:
    """How resources and prompts refuse: a JSON-RPC error (they have no error result of their own)."""
    return MCPError(code=INVALID_PARAMS, message=message)


def _describe(exc: Exception) -> str:
    if isinstance(exc, InvalidInput):
        return f"Invalid argument '{exc.field}': {exc.message}"
    if isinstance(exc, REDIS_OUTAGE_ERRORS):
        return f"Redis unavailable ({exc}): retry shortly"
    return str(exc)


def _status_of(exc: Exception) -> int:
    """The status REST answers for the same error (:data:`townhall.http.errors.DOMAIN_PROBLEMS`)."""
    rule = next((DOMAIN_PROBLEMS[k] for k in type(exc).__mro__ if k in DOMAIN_PROBLEMS), None)
    return rule.status if rule is not None else 503


def _audit(caller: Caller, what: str, status: int) -> None:
    record = AuditRecord(request_id=caller.request_id, principal=caller.principal.id, method="MCP",
                         path=f"{caller.channel}#{what}", status=status, outcome=outcome_of(status))
    audit_log.log(logging.INFO if record.outcome == "success" else logging.WARNING, _encoder.encode(record).decode())

