"""Loading user plugins (tool emulators, backends) before a command needs them.

Installed packages advertise toolkits through the `propensity.tools` entry point; modules that
are not installed (a folder of your own toolkits, on PYTHONPATH) are named with
`--plugin MODULE` or in PROPENSITY_PLUGINS (comma-separated). Importing a module is what
registers its toolkits.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable


class PluginError(ImportError):
    pass


def load_plugins(modules: Iterable[str] = ()) -> list[str]:
    """Import the named modules and installed entry points; returns problems found (not raised
    for entry points, which belong to other packages, but raised for modules the user named)."""
    from tools.python_emulators import load_entry_points

    named = [*modules, *filter(None, os.environ.get("PROPENSITY_PLUGINS", "").split(","))]
    for module in named:
        try:
            importlib.import_module(module.strip())
        except Exception as exc:
            raise PluginError(
                f"cannot load plugin {module!r}: {type(exc).__name__}: {exc}"
            ) from exc
    return [str(problem) for problem in load_entry_points()]
