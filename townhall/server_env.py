"""What townhall tells each of its server processes (``[townhall] workers`` > 1) through the environment:
set by the parent in :func:`townhall.server_processes.serve_processes`, read by plugins that keep
per-process state (docs/scaling-out.md). One spelling of the names for both sides."""

#: How many server processes serve the port.
PROCESSES_ENV = "TOWNHALL_SERVER_PROCESSES"
#: A directory the parent emptied for the processes to share (e.g. the metrics plugin's counters).
SHARED_DIR_ENV = "TOWNHALL_SERVER_SHARED_DIR"
