"""The ``tinytown.toml`` that ``tt init`` writes: every default spelled out, with the built-in presets."""

from __future__ import annotations

import json

from townhall.config import BUILTIN_CLIS


def starter_config(name: str) -> str:
    """The ``tinytown.toml`` that ``tt init`` writes."""
    lines = [
        f"name = {json.dumps(name)}",
        'default_cli = "claude"',
        "max_agents = 10",
        "use_streams = false",
        "",
        "[redis]",
        "# Leave url unset to let townhall run a private server on .tt/redis.sock.",
        "# url = \"redis://127.0.0.1:6379\"",
        "use_socket = true",
        'socket_path = ".tt/redis.sock"',
        "",
        "[townhall]",
        'bind = "127.0.0.1"',
        "rest_port = 8080",
        "request_timeout_ms = 30000",
        "",
        "[townhall.auth]",
        'mode = "none"',
        "",
        "[agent]",
        "idle_timeout_secs = 300",
        'launcher = "local"',
    ]
    for key, command in BUILTIN_CLIS.items():
        lines += ["", f"[agent_clis.{json.dumps(key) if '-' in key else key}]",
                  f"name = {json.dumps(key)}", f"command = {json.dumps(command)}"]
    return "\n".join(lines) + "\n"
