"""A recorded module imported again as the run imported it (:func:`_import_recorded`), never
from inside the run directory being read: where Python would import each package on the way
from is found before it is executed, and a location inside the run directory is refused
(:func:`_import_guarded`, raising ``PluginError``).
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from sandbox.import_path import _inside
from sandbox.plugins.loading import PluginError
from sandbox.run_inputs import UserModule


def _on_path(root: str) -> bool:
    return any(os.path.abspath(entry or ".") == root for entry in sys.path)


def _refused(record: UserModule, where: str, run_dir: Path, location: str) -> PluginError:
    instead = (
        "move it out of the run directory or install it"
        if record.role == "agent"
        else "install the module or load one registering its toolkits with --plugin MODULE"
    )
    return PluginError(
        f"the run's {_what(record)} {record.module!r} ({where}) would be imported from "
        f"{location}, inside the run directory {run_dir} being read; code is never imported "
        f"from a run directory (it is data): {instead}"
    )


def _find_spec(name: str, search: list[str] | None) -> ModuleSpec | None:
    """The spec the import system would use for ``name`` (its parent package's search
    locations ``search``; None for a top-level name), asking the finders as it does. Finding
    executes no code of the module or of its packages."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec = find(name, search, None)
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


def _locations(spec: ModuleSpec) -> list[str]:
    """Where a spec's code comes from: its file, and a package's search directories."""
    origin = spec.origin
    found = [origin] if origin and (spec.has_location or os.path.isabs(origin)) else []
    return found + [str(entry) for entry in spec.submodule_search_locations or ()]


def _import_guarded(record: UserModule, where: str, run_dir: Path | None) -> ModuleType:
    """``importlib.import_module(record.module)``, one package at a time: before each package
    on the way and the module itself is imported (executed), where Python would import it from
    is found without executing anything, and a location inside ``run_dir`` is refused."""
    if run_dir is None:
        return importlib.import_module(record.module)
    parts = record.module.split(".")
    module: ModuleType | None = None
    for index in range(1, len(parts) + 1):
        name = ".".join(parts[:index])
        if name not in sys.modules:
            search = None if module is None else getattr(module, "__path__", None)
            if module is not None and search is None:
                break  # not a package: the import below says so
            try:
                spec = _find_spec(name, None if search is None else list(search))
            except Exception as exc:
                raise PluginError(
                    f"cannot tell where the run's {_what(record)} {record.module!r} ({where}) "
                    f"would be imported from ({type(exc).__name__}: {exc}), so it is not "
                    "imported"
                ) from exc
            if spec is None:
                break  # not found: the import below fails without executing anything more
            for location in _locations(spec):
                if _inside(location, run_dir):
                    raise _refused(record, where, run_dir, location)
        module = importlib.import_module(name)
    return importlib.import_module(record.module)


def _import_recorded(record: UserModule, where: str, run_dir: Path | None = None) -> ModuleType:
    """Import ``record.module`` as the run did: from the directory it was found under, when
    that directory and the file are still there (and the module is not imported yet).

    Never from inside ``run_dir``, the run directory being read: a run directory is data (it
    may come from someone else), and a manifest naming code shipped beside its records must not
    make reading it run that code (``PluginError``). What the manifest records (``root``,
    ``file``) is written by whoever wrote the manifest, so the check is of where Python would
    really import each package on the way from (``_import_guarded``), made before it runs."""
    if record.module in sys.modules:
        return sys.modules[record.module]
    if run_dir is not None and (_inside(record.root, run_dir) or _inside(record.file, run_dir)):
        location = record.root if _inside(record.root, run_dir) else record.file
        raise _refused(record, where, run_dir, str(location))
    root = record.root
    if (
        root
        and Path(root).is_absolute()
        and Path(root).is_dir()
        and record.file
        and Path(record.file).is_file()
        and not _on_path(root)
    ):
        sys.path.insert(0, root)
        importlib.invalidate_caches()
    try:
        return _import_guarded(record, where, run_dir)
    except PluginError:
        raise
    except Exception as exc:
        was = f"imported from {record.file}" if record.file else "imported"
        raise PluginError(
            f"the run's {_what(record)} {record.module!r} ({record.given_as or record.role}; "
            f"{was}, as {where} records) cannot be imported: {type(exc).__name__}: {exc}. "
            "Make it importable again (restore the file, install it, or run from the "
            "directory or with the PYTHONPATH the run had)"
            + (
                f", or load a module registering its toolkits ({', '.join(record.toolkits)}) "
                "with --plugin MODULE"
                if record.toolkits
                else ""
            )
        ) from exc


def _what(record: UserModule) -> str:
    return {"plugin": "plugin", "toolkit": "toolkit module", "agent": "Python agent module"}[
        record.role
    ]
