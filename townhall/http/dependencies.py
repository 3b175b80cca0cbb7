"""What route handlers are given by dependency injection: the running town (``context``, app-wide) and
its services (``services``, under ``/v1``). A handler asks for them by parameter name and type:
``context: Context`` or ``services: Services``."""

from __future__ import annotations

from typing import TypeVar

from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from townhall.context import AppContext
from townhall.services.town import TownServices

T = TypeVar("T")

#: An injected object of ours, passed as is: without ``SkipValidation`` the signature model would have
#: msgspec inspect every type the object holds, down to the plugin registry.
Injected = NamedDependency[SkipValidation[T]]
Context = Injected[AppContext]
Services = Injected[TownServices]


def app_dependencies(ctx: AppContext) -> dict[str, Provide]:
    """``context`` for every route of the app serving ``ctx``. A provider without parameters: one that
    took the app's ``state`` had Litestar build a ``State`` for it and parse it from the connection on
    every request, for the same object each time."""

    def running_town() -> AppContext:
        return ctx

    return {"context": Provide(running_town, sync_to_thread=False)}


def v1_dependencies(ctx: AppContext) -> dict[str, Provide]:
    """``services`` for the ``/v1`` routes (read on each request, as ``context.services``)."""

    def town_services() -> TownServices:
        return ctx.services

    return {"services": Provide(town_services, sync_to_thread=False)}
