"""The agent worker (``tt agent-loop NAME`` / ``townhall worker NAME``): takes work, runs the agent's CLI.

See ``docs/worker.md`` for the lifecycle, delivery guarantees and exit codes.
"""

from townhall.worker.main import EXIT_ALREADY_RUNNING, EXIT_OK, EXIT_STARTUP, run_worker

__all__ = ["EXIT_ALREADY_RUNNING", "EXIT_OK", "EXIT_STARTUP", "run_worker"]
