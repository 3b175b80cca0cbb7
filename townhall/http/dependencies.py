"""What route handlers are given by dependency injection: the running town (``context``, app-wide) and
its services (``services``, under ``/v1``). Handlers declare them as ``NamedDependency[...]`` parameters."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import Provide

from townhall.context import AppContext
from townhall.services.town import TownServices


def running_town(state: State) -> AppContext:
    """The one place that knows where the app keeps the running town."""
    context: AppContext = state.ctx
    return context


def town_services(state: State) -> TownServices:
    return running_town(state).services


APP_DEPENDENCIES = {"context": Provide(running_town, sync_to_thread=False)}
V1_DEPENDENCIES = {"services": Provide(town_services, sync_to_thread=False)}
