"""A test town's files: writing ``tinytown.toml``, reading the audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_town(root: Path, name: str, *, redis_url: str | None = None, extra: str = "",
               launcher: str | None = "none") -> Path:
    """A town pointing at the test server; ``extra`` is appended TOML (tables after the top keys).

    Tests use launcher ``none`` unless they ask for one: spawning real workers is opt-in."""
    lines = [f"name = {json.dumps(name)}", "max_agents = 10"]
    head, tables = _split_top_level(extra)
    lines += head
    if redis_url:
        lines += ["[redis]", f"url = {json.dumps(redis_url)}"]
    if launcher and "[agent]" not in tables:
        lines += ["[agent]", f"launcher = {json.dumps(launcher)}"]
    (root / ".tt" / "logs").mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n" + tables
    (root / "tinytown.toml").write_text(text, encoding="utf-8")
    return root


def _split_top_level(extra: str) -> tuple[list[str], str]:
    """Top-level ``key = value`` lines must precede the first table."""
    head: list[str] = []
    rest = extra.strip().splitlines()
    while rest and not rest[0].lstrip().startswith("["):
        if rest[0].strip():
            head.append(rest[0])
        rest = rest[1:]
    return head, "\n".join(rest) + ("\n" if rest else "")


def append_config(town_dir: Path, text: str) -> None:
    """Append ``text`` (TOML tables) to the town's ``tinytown.toml``."""
    with (town_dir / "tinytown.toml").open("a", encoding="utf-8") as f:
        f.write(text)


def read_audit(path: Path) -> list[dict[str, Any]]:
    """The lines of an audit file (``[townhall.audit] file``), decoded; none when it does not exist."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
