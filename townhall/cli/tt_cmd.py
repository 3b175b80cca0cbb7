"""The ``tt`` console script (also ``python -m townhall.cli.tt_cmd``): town setup and operations on the
same services as REST.

Every command but ``init`` opens the town's Redis (starting its private server when nothing answers,
stopped again when the last of the town's processes ends) and calls the services — never Redis directly. Human output is a ``rich`` table or line;
``--json`` prints the same data as JSON. Exit codes: 0 ok, 1 a refused operation (not found, conflict,
invalid input) or Redis unavailable, 2 configuration error, 3 (``agent-loop``) another live worker
already serves the agent.
"""

from __future__ import annotations

from townhall.cli.groups import register_plugin_commands, tt


def main() -> None:
    register_plugin_commands()
    tt()


if __name__ == "__main__":
    main()
