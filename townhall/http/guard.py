"""The one guard every route passes: public routes pass; ``/v1`` routes need a principal and a scope.

A route's scope is its ``opt["scope"]``, which Litestar merges from the layers: a resource controller
declares it once (:class:`townhall.routes.common.Resource`), a handler may declare another. Outside
``/v1`` a route without one is public; under ``/v1`` the app refuses to start with one
(:func:`unscoped_v1_routes`), so a forgotten declaration fails closed. The auth mode plugin only turns a request into a principal; everything else happens here.
"""

from __future__ import annotations

from typing import Any, Coroutine

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler

from townhall.auth import AuthBusy, AuthRequest, InvalidCredentials, Principal, Scope
from townhall.context import AppContext

REALM = 'Bearer realm="townhall"'
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def _bearer(error: str, description: str, scope: str | None = None) -> dict[str, str]:
    safe = description.replace('"', "'")
    value = f'{REALM}, error="{error}", error_description="{safe}"'
    if scope:
        value += f', scope="{scope}"'
    return {"WWW-Authenticate": value}


def unscoped_v1_routes(app: Litestar) -> list[str]:
    """``"METHOD /v1/path"`` of every ``/v1`` handler (the core's or a plugin's) that declares no scope.

    Litestar's implicit ``OPTIONS`` answer is not a handler anyone wrote and carries no data.
    """
    found: list[str] = []
    for route in app.routes:
        if not (route.path == "/v1" or route.path.startswith("/v1/")):
            continue
        for handler in getattr(route, "route_handlers", ()):
            methods = getattr(handler, "http_methods", None) or {"WEBSOCKET"}
            implicit_options = methods == {"OPTIONS"} and not getattr(handler, "include_in_schema", True)
            if handler.opt.get("scope") is None and not implicit_options:
                found += [f"{method} {route.path}" for method in sorted(methods)]
    return found


class Gate:
    """The guard of one app: :meth:`admit` is every route's admission (the envelope calls it), with
    what the config decides once (the rate limiter, a scope the config puts on ``/metrics``)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.limiter = ctx.rate_limiter
        wanted = ctx.town.config.townhall.metrics.require_scope
        #: ``[townhall.metrics] require_scope``: a scope the config puts on the public ``/metrics``.
        self.metrics_scope = Scope(wanted) if wanted else None

    def admit(self, connection: ASGIConnection[Any, Any, Any, Any],
              handler: BaseRouteHandler) -> Coroutine[Any, Any, None] | None:
        """The admission of a request to ``handler``: ``None`` when it is admitted already (a public
        route: only its rate limit applies, checked here, so a probe's admission costs no await), else
        the authorization to await (raises what refuses it)."""
        required: Scope | None = handler.opt.get("scope")
        if required is None and self.metrics_scope is not None and connection.scope["path"] == "/metrics":
            required = self.metrics_scope
        if required is not None:
            return self.authorize(connection, required)
        if self.limiter is not None:
            # Public routes have a bucket of their own per address: generous, so probes and scrapers
            # never notice it, but a flood of them is refused cheaply.
            self.limiter.check_public(connection)
        return None

    async def authorize(self, connection: ASGIConnection[Any, Any, Any, Any], required: Scope) -> None:
        """A request to a route that needs ``required``: credentials, rate limits, then the scope."""
        limiter = self.limiter
        if limiter is not None:
            limiter.check_auth_allowed(connection)
        _refuse_repeated_credentials(connection)
        principal = await authenticate(self.ctx, connection)
        connection.scope["user"] = principal
        if limiter is not None:
            # Before the scope check: a principal's denied requests count too (each one writes an audit
            # line, so unlimited 403s would be an unlimited log).
            await limiter.check(connection, principal)
        if not principal.has(required):
            raise PermissionDeniedException(
                detail=f"Insufficient permissions: this route needs scope '{required.value}'",
                headers=_bearer("insufficient_scope", "missing scope", required.value),
            )


def _refuse_repeated_credentials(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Two ``Authorization`` (or ``X-API-Key``) lines are ambiguous: which one a proxy, a cache or the
    app reads differs, so none is picked."""
    names = [name for name, _ in connection.scope["headers"] if name in CREDENTIAL_HEADERS]
    for header in CREDENTIAL_HEADERS:
        if names.count(header) > 1:
            raise ClientException(detail=f"Duplicate {header.decode()} header: send credentials once")


async def authenticate(ctx: AppContext, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    limiter = ctx.rate_limiter
    peer = connection.client.host if connection.client else None
    request = AuthRequest(
        headers=connection.headers,
        # The address the rate limits use (behind a trusted proxy: the real client), so a mode that
        # ranks work by sender sees senders, not the proxy.
        client=limiter.client_address(connection) if limiter is not None else peer,
        path=connection.scope["path"],
    )
    try:
        principal = await ctx.auth.authenticate(request)
    except AuthBusy as exc:
        # A refused attempt spends the sender's budget like a wrong key: a flood cannot retry for free.
        if limiter is not None:
            await limiter.record_auth_failure(connection)
        raise TooManyRequestsException(
            detail=exc.description, headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except InvalidCredentials as exc:
        if ctx.rate_limiter is not None:
            await ctx.rate_limiter.record_auth_failure(connection)
        if exc.error == "insufficient_scope":
            raise PermissionDeniedException(
                detail=exc.description, headers=_bearer(exc.error, exc.description)
            ) from None
        raise NotAuthorizedException(
            detail=exc.description, headers=_bearer(exc.error, exc.description)
        ) from None
    if principal is None:
        # Requests without credentials drain the same per-address bucket as bad ones: otherwise an
        # anonymous flood would get unlimited 401s, each one audited.
        if ctx.rate_limiter is not None:
            await ctx.rate_limiter.record_auth_failure(connection)
        raise NotAuthorizedException(detail="Authentication required", headers={"WWW-Authenticate": REALM})
    return principal
