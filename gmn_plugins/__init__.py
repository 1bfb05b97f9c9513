"""gmn-plugins: Generative Multisensory Networks with a declarative modality plugin registry.

Plugin authors need only ``from gmn_plugins import hookimpl`` (see ``gmn_plugins.hookspecs``).
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

hookimpl = pluggy.HookimplMarker("gmn_plugins")

try:
    __version__ = version("gmn-plugins")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["hookimpl", "__version__"]
