"""Townhall: the REST control plane of a Tinytown town."""

from importlib.metadata import PackageNotFoundError, version

import pluggy

try:
    __version__ = version("townhall")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

#: Marker for hook implementations: ``@hookimpl def townhall_register_auth_modes(register): ...``
hookimpl = pluggy.HookimplMarker("townhall")

__all__ = ["__version__", "hookimpl"]
