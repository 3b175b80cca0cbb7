"""Pool workers' agent names (``townhall worker`` / ``tt agent-loop`` without NAME).

Identical replicas (a Deployment, a ScaledJob, a loop starting processes) cannot be given hand-written
names, so each registers ``<prefix>-<host>-<suffix>``: the prefix (``--pool``, default ``worker``), the
host name when ``HOSTNAME`` is set (a Kubernetes pod or container name, so a record points at its
replica) and a short random suffix (a restarted container is a new worker, not the old one's heir).
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field

from townhall.domain import is_reserved_agent_name
from townhall.domain_errors import InvalidInput
from townhall.services.inputs import MAX_LABEL_CHARS, check_agent_name

DEFAULT_POOL = "worker"
SUFFIX_HEX = 6
#: Room the prefix must leave for ``-<suffix>``.
MAX_PREFIX_CHARS = MAX_LABEL_CHARS - 1 - SUFFIX_HEX
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Pool:
    """What a worker started without NAME serves: a new agent of pool ``prefix``, named after
    ``hostname`` (``$HOSTNAME`` when the request is made)."""

    prefix: str = DEFAULT_POOL
    hostname: str | None = field(default_factory=lambda: os.environ.get("HOSTNAME"))

    def __str__(self) -> str:
        return f"of pool {self.prefix}"


def check_pool_prefix(prefix: str) -> str:
    """A prefix every generated name starts with: an agent name itself (letters, digits, ``.``,
    ``_``, ``-``, starting with a letter or digit, not reserved), short enough for the suffix."""
    try:
        text = check_agent_name(prefix)
    except InvalidInput as exc:
        raise InvalidInput("pool", f"pool prefix: {exc}") from None
    if is_reserved_agent_name(text):
        raise InvalidInput("pool", f"pool prefix '{text}' is reserved for the supervisor/conductor mailbox")
    if len(text) > MAX_PREFIX_CHARS:
        raise InvalidInput("pool", f"pool prefix is longer than {MAX_PREFIX_CHARS} characters")
    return text


def pool_agent_name(prefix: str, hostname: str | None) -> str:
    """``<prefix>-<host>-<suffix>`` (``<prefix>-<suffix>`` without a host), at most 64 characters."""
    suffix = secrets.token_hex(SUFFIX_HEX // 2)
    host = _UNSAFE.sub("-", (hostname or "").strip()).strip("-._")
    room = MAX_LABEL_CHARS - len(prefix) - len(suffix) - 2
    host = host[:room].rstrip("-._") if room > 0 else ""
    return "-".join(part for part in (prefix, host, suffix) if part)
