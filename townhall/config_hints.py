"""Wording help for config messages: the key a misspelt one resembles, and which table of a dictionary of
tables (``[agent_clis.NAME]``) an error is about."""

from __future__ import annotations

import difflib
from typing import Any, Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The known key ``name`` most resembles, if one is close enough to be a likely typo."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def name_entries(dotted: str, raw: dict[str, Any], missing: str) -> str:
    """``dotted`` with msgspec's ``[...]`` (an entry of a dictionary of tables, such as a preset of
    ``[agent_clis]``) replaced by the names of the entries that lack the key ``missing``."""
    head, marker, _ = dotted.partition("[...]")
    if not marker:
        return dotted
    node: Any = raw
    for part in filter(None, head.split(".")):
        node = node.get(part) if isinstance(node, dict) else None
    names = [name for name, entry in (node or {}).items() if isinstance(entry, dict) and missing not in entry]
    entries = ", ".join(f"{head}.{n}" for n in names) if names else f"{head}.<entry>"
    return dotted.replace(f"{head}[...]", entries, 1)
