"""``python -m townhall``: the ``townhall`` console script."""

from townhall.cli.townhall_cmd import main

main()
