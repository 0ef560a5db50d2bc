"""The current directory on the import path, as ``python -m`` puts it, but never a run directory.

``--plugin my_plugin`` and ``--agent python:my_agents:agent`` find modules next to where the
command is run (``make_cwd_importable``); while a run directory is being read (its path in
``_run_dirs_read``, added by ``sandbox.plugins``), the current directory is never put on the path
if it lies inside it: a run directory is data, never code. No imports of the project, so the
agents and the plugin machinery can both use it.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path


def _inside(path: str | None, directory: Path | None) -> bool:
    """Whether ``path`` lies in ``directory``, as written (made absolute) or with symbolic
    links resolved, either way."""
    if not path or directory is None:
        return False
    try:
        written = Path(os.path.abspath(path)).is_relative_to(os.path.abspath(directory))
        return written or Path(path).resolve().is_relative_to(directory.resolve())
    except (OSError, ValueError, RuntimeError):
        return True  # cannot tell: as if it were inside


# Run directories being read in this process: the current directory is never put on the import
# path while it lies inside one (see make_cwd_importable).
_run_dirs_read: list[Path] = []


def make_cwd_importable() -> None:
    """Put the current directory first on the import path, as `python -m` does (a console
    script has its own directory there instead), so `--plugin my_plugin` and
    `--agent python:my_agents:agent` find modules next to where the command is run."""
    cwd = os.getcwd()
    if any(_inside(cwd, run_dir) for run_dir in _run_dirs_read):
        return  # a run directory being read is data, never code
    for entry in sys.path:
        if entry in ("", ".") or os.path.abspath(entry) == cwd:
            return
    sys.path.insert(0, cwd)
    importlib.invalidate_caches()
