"""What a run depends on, recorded for its manifest: the user modules it imported
(:func:`run_user_modules`, each described by :func:`describe_module`: file, root, sha256,
version, package digest) and the files it read (:func:`run_input_files`), with their sha256
(:func:`path_sha256`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from types import ModuleType

from sandbox.plugins.loading import _named
from sandbox.run_inputs import InputFile, ModuleRole, UserModule

# Our own top-level packages: toolkits they define are part of the installed version.
_OWN_PACKAGES = frozenset({"tools", "sandbox", "scenarios", "evaluators", "containers"})
# Hashing reads at most this many files of a package or pack directory (and skips larger ones).
_MAX_FILES = 5000
_MAX_FILE_BYTES = 256 << 20
# A package's files are named one by one in the manifest up to this many.
_MAX_LISTED_FILES = 200


def _sha256_files(paths: list[Path], base: Path | None) -> tuple[str | None, int]:
    """One digest over files (their names relative to ``base`` and their bytes)."""
    digest = hashlib.sha256()
    count = 0
    for path in sorted(paths)[:_MAX_FILES]:
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            return None, count
        name = path.relative_to(base).as_posix() if base is not None else path.name
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        count += 1
    return digest.hexdigest(), count


def _tree_files(directory: Path, suffixes: Collection[str] | None = None) -> list[Path]:
    found: list[Path] = []
    for current, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            if name.startswith(".") or (suffixes is not None and Path(name).suffix not in suffixes):
                continue
            found.append(Path(current) / name)
            if len(found) >= _MAX_FILES:
                return found
    return found


def path_sha256(path: Path, suffixes: Collection[str] | None = None) -> tuple[str | None, int]:
    """sha256 of a file, or of a directory's files (optionally only those with ``suffixes``),
    and how many files it covers; (None, 0) when it cannot be read."""
    try:
        if path.is_dir():
            return _sha256_files(_tree_files(path, suffixes), path)
        if path.is_file():
            return _sha256_files([path], None)
    except OSError:
        pass
    return None, 0


def _version_of(module: ModuleType) -> str | None:
    top = module.__name__.partition(".")[0]
    try:
        distributions = importlib.metadata.packages_distributions().get(top, [])
        for name in distributions:
            return f"{name} {importlib.metadata.version(name)}"
    except Exception:  # metadata of other packages must not stop a run
        pass
    version = getattr(module, "__version__", None)
    return str(version) if isinstance(version, str) else None


def _root_of(name: str, file: Path) -> Path | None:
    """The import-path directory ``name`` was found under, from its file."""
    levels = name.count(".") + (1 if file.stem == "__init__" else 0)
    try:
        root = file.parents[levels]
    except IndexError:
        return None
    return root


def describe_module(name: str, role: ModuleRole, given_as: str) -> UserModule:
    """What to record of an imported module (file, root, sha256, version)."""
    module = sys.modules.get(name)
    record = UserModule(module=name, role=role, given_as=given_as)
    if module is None:
        return record
    file = getattr(module, "__file__", None)
    if file:
        path = Path(os.path.abspath(file))
        record.file = str(path)
        root = _root_of(name, path)
        record.root = str(root) if root is not None else None
        if path.stem == "__init__":  # a package: every .py file under it counts
            record.sha256, _ = path_sha256(path.parent, suffixes={".py"})
        else:
            record.sha256, _ = path_sha256(path)
        top = root / name.partition(".")[0] if root is not None else None
        if top is not None and ("." in name or path.stem == "__init__") and top.is_dir():
            # Part of a package: its helper modules are the plugin's behaviour too.
            record.package = str(top)
            record.package_sha256, record.package_files = _package_digest(top)
    record.version = _version_of(module)
    return record


def _package_digest(directory: Path) -> tuple[str | None, dict[str, str]]:
    """One digest over every .py file under ``directory`` (bounded as ``path_sha256``), and
    each file's own sha256 by its path relative to ``directory`` when there are few enough."""
    files: dict[str, str] = {}
    try:
        paths = sorted(_tree_files(directory, {".py"}))[:_MAX_FILES]
        for path in paths:
            if path.stat().st_size > _MAX_FILE_BYTES:
                continue
            files[path.relative_to(directory).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    except OSError:
        return None, {}
    digest = hashlib.sha256()
    for name, file_digest in sorted(files.items()):
        digest.update(name.encode() + b"\0" + bytes.fromhex(file_digest))
    return digest.hexdigest(), (files if len(files) <= _MAX_LISTED_FILES else {})


def _merge(records: dict[str, UserModule], record: UserModule) -> None:
    existing = records.get(record.module)
    if existing is None:
        records[record.module] = record
    else:
        existing.toolkits.update(record.toolkits)


def run_user_modules(
    agent_specs: Iterable[str],
    toolkit_names: Iterable[str],
    kind_modules: Iterable[tuple[str, str]] = (),
) -> list[UserModule]:
    """The user code a run depends on, as imported by this process: the plugins named, the
    modules defining the given Python toolkits and the run's kinds of episode (``(module, kind
    name)``; an installed entry point's too), unless they are ours, and the modules of
    ``python:`` agents. Call it once the run's agents are built (their modules imported)."""
    from tools.python_emulators import python_toolkits

    records: dict[str, UserModule] = {}
    for module, given_as in _named.items():
        _merge(records, describe_module(module, "plugin", given_as))
    registered = python_toolkits()
    for name in sorted(set(toolkit_names)):
        cls = registered.get(name)
        if cls is None or cls.__module__.partition(".")[0] in _OWN_PACKAGES:
            continue
        record = describe_module(cls.__module__, "toolkit", f"toolkit {name}")
        record.toolkits[name] = cls.__qualname__
        _merge(records, record)
    for module, kind in kind_modules:
        if module.partition(".")[0] not in _OWN_PACKAGES:
            _merge(records, describe_module(module, "plugin", f"kind {kind}"))
    for spec in agent_specs:
        if spec.startswith("python:"):
            module = spec.removeprefix("python:").partition(":")[0]
            if module:
                _merge(records, describe_module(module, "agent", spec))
    return list(records.values())


def run_input_files(pack_path: Path, toolkit_paths: Iterable[str]) -> list[InputFile]:
    """The pack (its directory or file) and toolkit spec files, with their sha256."""
    inputs = []
    for role, path in [("pack", pack_path), *(("toolkit spec", Path(p)) for p in toolkit_paths)]:
        path = Path(os.path.abspath(path))
        digest, count = path_sha256(path)
        inputs.append(InputFile(role=role, path=str(path), sha256=digest, files=count))
    return inputs
