"""Test support for townhall and its plugins, shipped with the core.

:mod:`townhall.testing.plugin` is a pytest plugin (entry point ``townhall`` in the ``pytest11`` group),
active in every pytest run of an environment where townhall is installed: its fixtures (a private Redis
server per session on a unix socket, fresh town names and directories, a real townhall process) are
there without any import. The helpers behind them live beside it: :mod:`~townhall.testing.redis_server`,
:mod:`~townhall.testing.process`, :mod:`~townhall.testing.towns`, :mod:`~townhall.testing.inprocess`,
:mod:`~townhall.testing.seed` and :mod:`~townhall.testing.sse` (a reader of ``GET /v1/events``). ``docs/plugins.md`` shows a plugin's test using them.

This package imports nothing on its own: pytest loads the plugin module in every run, so it stays cheap.
"""
