"""The agent CLI's environment: an allow-list, never the worker's whole environment.

The worker holds the town's secrets (``REDIS_URL`` with its password, ``TINYTOWN_REDIS_PASSWORD``, the
``TOWNHALL_*`` settings of plugins), and the CLI's output becomes a task result that any ``town.read``
caller can see; so the CLI gets only what it needs to run plus what the user names explicitly.
"""

from __future__ import annotations

import fnmatch
from typing import Mapping
from urllib.parse import urlsplit

from townhall.config import AgentCliPreset, Town

#: Always passed when the worker has them (``LC_*`` is a pattern).
BASE_ALLOW = ("PATH", "HOME", "LANG", "LC_*", "TERM", "TMPDIR")
#: Never passed, whatever ``pass_env`` or a preset says.
NEVER = ("REDIS_URL", "TINYTOWN_REDIS_PASSWORD", "TOWNHALL_*")


def cli_environment(town: Town, preset: AgentCliPreset, worker_env: Mapping[str, str], *,
                    agent_id: str, agent_name: str, task_id: str | None) -> dict[str, str]:
    """What the CLI of ``preset`` runs with: the allow-listed and ``[agent] pass_env`` variables of the
    worker's environment, the preset's ``env``, then the ``TINYTOWN_*`` identity variables. A variable
    named in :data:`NEVER`, or whose value contains the town's Redis password, is dropped."""
    allowed = (*BASE_ALLOW, *town.config.agent.pass_env)
    env = {k: v for k, v in worker_env.items() if _matches(k, allowed)}
    env.update(preset.env)
    env.update({"TINYTOWN_AGENT_ID": agent_id, "TINYTOWN_AGENT_NAME": agent_name})
    if task_id:
        env["TINYTOWN_TASK_ID"] = task_id
    secrets = town_secrets(town, worker_env)
    return {k: v for k, v in env.items()
            if not _matches(k, NEVER) and not any(secret in v for secret in secrets)}


def town_secrets(town: Town, worker_env: Mapping[str, str]) -> list[str]:
    """The Redis password however it was given (config, URL, environment)."""
    redis = town.config.redis
    candidates = [redis.password, worker_env.get("TINYTOWN_REDIS_PASSWORD"),
                  *(urlsplit(url).password for url in (redis.url, worker_env.get("REDIS_URL")) if url)]
    return [c for c in candidates if c]


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
