"""The reliability suite: ``pytest -m reliability tests/reliability``.

CI runs the bounded form; ``TOWNHALL_RELIABILITY=long`` runs the long form (see docs/reliability.md).
"""

from __future__ import annotations

import os

import pytest

LONG = os.environ.get("TOWNHALL_RELIABILITY", "").lower() == "long"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability" in str(item.fspath):
            item.add_marker(pytest.mark.reliability)


def bounded(short: float, long: float) -> float:
    """The figure for this run: ``short`` in CI, ``long`` for the long form."""
    return long if LONG else short
