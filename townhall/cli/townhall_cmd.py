"""The ``townhall`` console script; a bare ``townhall`` runs ``townhall rest``."""

from __future__ import annotations

from townhall.cli.groups import register_plugin_commands, townhall


def main() -> None:
    register_plugin_commands()
    townhall()


if __name__ == "__main__":
    main()
