"""The core's tests share their fixtures through the ``townhall.testing`` pytest plugin; this adds the
one that only the core's worker tests need."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.workers import reap_workers


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """Kill the worker processes a test started and left running (a failed assertion must not leak them)."""
    yield
    reap_workers()
