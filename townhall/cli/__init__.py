"""The console scripts ``townhall`` and ``tt``.

``tt_cmd`` / ``townhall_cmd``: entry points · ``groups``: the command tree · ``options``: the town options ·
``common``: opening the town, exit codes · ``output``: ``--json`` or a table/line (plugins may use it) ·
``town``, ``agents``, ``tasks``, ``messages``, ``serve``: the commands by area.
"""
