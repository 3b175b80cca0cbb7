"""Whether a process on this host is still running, by pid (liveness claims, the private Redis's
users, ``tt up``'s pid files)."""

from __future__ import annotations

import os


def has_ended(pid: int) -> bool:
    """The process is gone or a zombie. One we may not signal (another user's) counts as running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
