"""The core's tests share their fixtures through the ``townhall.testing`` pytest plugin; this adds the
ones that only the core's tests need."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.workers import reap_workers
from townhall.testing.process import TownhallProcess


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """Kill the worker processes a test started and left running (a failed assertion must not leak them)."""
    yield
    reap_workers()


@pytest.fixture
def procs() -> Iterator[list[TownhallProcess]]:
    """The townhall processes a test starts (see :func:`tests.support.served.serve`), stopped after it."""
    started: list[TownhallProcess] = []
    yield started
    for proc in started:
        proc.stop()
