"""Plugins loaded: the modules named with ``--plugin`` or PROPENSITY_PLUGINS imported (from
the current directory too, as ``python -m`` does), and the installed entry points; the modules
named are kept (``_named``) for the run's manifest (:mod:`sandbox.plugins.recording`).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable

from sandbox.import_path import make_cwd_importable

ENV_VAR = "PROPENSITY_PLUGINS"


class PluginError(ImportError):
    """A plugin (or another module of user code a run needs) cannot be imported."""


# Modules named with --plugin / PROPENSITY_PLUGINS and imported by this process, in order.
_named: dict[str, str] = {}


def named_plugins(modules: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(module, how it was named) for ``modules`` (from ``--plugin``) and PROPENSITY_PLUGINS."""
    named = [(m.strip(), "--plugin") for m in modules if m.strip()]
    named += [(m.strip(), ENV_VAR) for m in os.environ.get(ENV_VAR, "").split(",") if m.strip()]
    return named


def load_plugins(modules: Iterable[str] = ()) -> list[str]:
    """Import the named modules and installed entry points; returns problems found (not raised
    for entry points, which belong to other packages, but raised for modules the user named)."""
    from tools.python_emulators import load_entry_points

    named = named_plugins(modules)
    if named:
        make_cwd_importable()
    for module, given_as in named:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", module):
            stem = module.rstrip("/").rsplit("/", 1)[-1].removesuffix(".py")
            raise PluginError(
                f"cannot load plugin {module!r}: {given_as} takes a module name (like "
                f"{stem or 'my_plugin'!r}), not a path; the current directory is importable, "
                "and PYTHONPATH adds others"
            )
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise PluginError(
                f"cannot load plugin {module!r}: {type(exc).__name__}: {exc}"
            ) from exc
        _named.setdefault(module, given_as)
    return [str(problem) for problem in load_entry_points()]
