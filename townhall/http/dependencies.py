"""What route handlers are given by dependency injection: the running town (``context``, app-wide) and
its services (``services``, under ``/v1``). A handler asks for them by parameter name and type:
``context: Context`` or ``services: Services``."""

from __future__ import annotations

from typing import TypeVar

from litestar.datastructures import State
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


def running_town(state: State) -> AppContext:
    """The one place that knows where the app keeps the running town."""
    context: AppContext = state.ctx
    return context


def town_services(state: State) -> TownServices:
    return running_town(state).services


APP_DEPENDENCIES = {"context": Provide(running_town, sync_to_thread=False)}
V1_DEPENDENCIES = {"services": Provide(town_services, sync_to_thread=False)}
