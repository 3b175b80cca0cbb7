"""Counters shared by townhall's server processes (``[townhall] workers`` > 1).

townhall gives each of its server processes a directory they share (``TOWNHALL_SERVER_SHARED_DIR``);
prometheus_client's multiprocess mode keeps every process's counters and histograms in files there, and
a scrape — whichever process answers it — adds them up, so ``/metrics`` counts every request of the
server, not those of one process. The mode is chosen when prometheus_client is first imported, so this
module runs before anything imports it (``townhall_metrics/__init__.py`` imports it first). A
``PROMETHEUS_MULTIPROC_DIR`` set by the operator is left as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from townhall.server_env import SHARED_DIR_ENV

_SHARED = os.environ.get(SHARED_DIR_ENV)
if _SHARED and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _DIR = Path(_SHARED) / "prometheus"
    _DIR.mkdir(exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_DIR)


def shared_metrics_dir() -> str | None:
    """Where the server processes' counters are kept, when there are several (else ``None``)."""
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        return None  # prometheus_client was imported before the directory was known: per process
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")
