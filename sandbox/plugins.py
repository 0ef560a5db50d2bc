"""User code a run depends on: plugins loaded, recorded in the run's manifest, loaded again.

Installed packages advertise toolkits through the `propensity.tools` entry point; modules that
are not installed (a folder of your own toolkits) are named with `--plugin MODULE` or in
PROPENSITY_PLUGINS (comma-separated). Importing a module is what registers its toolkits. As with
`python -m`, the current directory is importable for these modules and for `python:` agents.

A run records what it imported in its manifest (`user_modules`): every plugin named, the module
of every Python toolkit its scenarios use that is not one of ours (an entry point's, or one
registered in-process), and the module of every `python:module:attr` agent, each with the
directory it was imported from, its file, version and sha256 (and, for a module of a
package, the digest of every .py file of its top-level package). It records the files it read
(`input_files`: the pack, toolkit specs) with their sha256 too. The commands that rebuild the
run's tools or agents (`--resume`, `replay verify --against sandbox`, `replay branch`; `merge`,
which loads the pack) import the recorded modules again from the same place
(`restore_user_modules`): a module that cannot be imported is one clear error naming it and the
manifest, and one whose files changed since the run is a warning, as is a changed input file.
`report` and the other replay modes import none.

A manifest is data written by whoever made the run. Code is never imported from inside the
run directory being read: before each package on the way to a recorded module is executed,
where Python would import it from is found without executing anything (the finders of
``sys.meta_path``, given the parent package's real search path), and a location inside the run
directory is refused, whatever ``root``/``file`` the manifest claims (``_import_guarded``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Collection, Iterable
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from sandbox.import_path import _inside, _run_dirs_read
from sandbox.import_path import make_cwd_importable as make_cwd_importable
from sandbox.run_inputs import InputFile as InputFile
from sandbox.run_inputs import ModuleRole as ModuleRole
from sandbox.run_inputs import UserModule as UserModule
from sandbox.store import MANIFEST, Manifest

ENV_VAR = "PROPENSITY_PLUGINS"
# Our own top-level packages: toolkits they define are part of the installed version.
_OWN_PACKAGES = frozenset({"tools", "sandbox", "scenarios", "evaluators", "containers"})
# Hashing reads at most this many files of a package or pack directory (and skips larger ones).
_MAX_FILES = 5000
_MAX_FILE_BYTES = 256 << 20
# A package's files are named one by one in the manifest up to this many.
_MAX_LISTED_FILES = 200

#: Roles a run needs to rebuild its tools (verify --against sandbox, branch, merge's pack);
#: `--resume` needs every role.
TOOL_ROLES: frozenset[ModuleRole] = frozenset({"plugin", "toolkit"})
ALL_ROLES: frozenset[ModuleRole] = frozenset({"plugin", "toolkit", "agent"})


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
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise PluginError(
                f"cannot load plugin {module!r}: {type(exc).__name__}: {exc}"
            ) from exc
        _named.setdefault(module, given_as)
    return [str(problem) for problem in load_entry_points()]


# -- recording -----------------------------------------------------------------------------


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


def run_user_modules(agent_specs: Iterable[str], toolkit_names: Iterable[str]) -> list[UserModule]:
    """The user code a run depends on, as imported by this process: the plugins named, the
    modules defining the given Python toolkits (unless they are ours), the modules of
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


# -- loading again -------------------------------------------------------------------------


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


def _changes(record: UserModule, module: ModuleType, where: str) -> list[str]:
    now = describe_module(module.__name__, record.role, record.given_as)
    label = f"{_what(record)} {record.module!r}"
    if record.file and now.file and now.file != record.file:
        return [
            f"{label} is now imported from {now.file}, but the run imported {record.file} "
            f"({where}): results may differ from the recorded ones"
        ]
    changes = []
    if record.package_sha256 and now.package_sha256 and record.package == now.package:
        # The whole package is compared (the module's own file is part of it).
        if now.package_sha256 != record.package_sha256:
            changes.append(
                f"{label} ({now.file}) has changed since the run recorded in {where}: "
                f"{_package_changes(record, now)} in its package {now.package}: results may "
                "differ from the recorded ones"
            )
    elif record.sha256 and now.sha256 and now.sha256 != record.sha256:
        changes.append(
            f"{label} ({now.file}) has changed since the run recorded in {where} "
            f"(sha256 {record.sha256[:12]} then, {now.sha256[:12]} now): results may differ "
            "from the recorded ones"
        )
    if record.version and now.version and now.version != record.version:
        changes.append(
            f"{label} is {now.version} now, the run ({where}) had {record.version}: results "
            "may differ from the recorded ones"
        )
    return changes


def _package_changes(then: UserModule, now: UserModule) -> str:
    """Which files of the package changed, as far as both records name them."""
    if not then.package_files or not now.package_files:
        sha_then, sha_now = str(then.package_sha256)[:12], str(now.package_sha256)[:12]
        return f"its files differ (sha256 {sha_then} then, {sha_now} now)"
    old, new = then.package_files, now.package_files
    parts = [
        (verb, sorted(names))
        for verb, names in (
            ("changed", {n for n in old.keys() & new.keys() if old[n] != new[n]}),
            ("added", new.keys() - old.keys()),
            ("removed", old.keys() - new.keys()),
        )
        if names
    ]
    return "; ".join(f"{verb} {', '.join(names)}" for verb, names in parts)


def _toolkit_names() -> list[str]:
    from tools.python_emulators import python_toolkits

    return list(python_toolkits())


def _register_toolkits(record: UserModule, module: ModuleType, where: str) -> None:
    """Toolkits the run used from this module, registered again when importing it did not
    (an entry point or an in-process registration had registered them)."""
    from tools.python_emulators import python_toolkits, register_toolkit

    registered = python_toolkits()
    for name, qualname in record.toolkits.items():
        if name in registered:
            continue
        target: object = module
        for part in qualname.split("."):
            target = getattr(target, part, None)
        try:
            register_toolkit(target)  # type: ignore[type-var]
        except (TypeError, ValueError) as exc:
            raise PluginError(
                f"{_what(record)} {record.module!r} no longer provides the toolkit {name!r} "
                f"(class {qualname}) that the run used ({where}): {exc}"
            ) from None


def restore_user_modules(
    records: Iterable[UserModule],
    where: str,
    *,
    roles: Collection[ModuleRole] = ALL_ROLES,
    required: bool = True,
    warn: Callable[[str], None] = lambda _: None,
    run_dir: Path | None = None,
) -> list[str]:
    """Import again the modules a run recorded (those of ``roles``), as the run imported them
    (never from inside ``run_dir``, the run directory being read: see ``_import_recorded``).

    A module that cannot be imported raises ``PluginError`` naming it and ``where`` (the
    manifest) when ``required``, else it is a warning; a module whose file, content or version
    changed since the run is a warning. Returns the modules imported."""
    imported: list[str] = []
    wanted = [r for r in records if r.role in roles]
    if run_dir is not None:
        _run_dirs_read.append(Path(os.path.abspath(run_dir)))
    if wanted:
        make_cwd_importable()
    for record in wanted:
        try:
            module = _import_recorded(record, where, run_dir)
            _register_toolkits(record, module, where)
        except PluginError as exc:
            if record.toolkits and set(record.toolkits) <= set(_toolkit_names()):
                warn(
                    f"{exc}; using the toolkit(s) {', '.join(record.toolkits)} registered now "
                    "instead"
                )
                continue
            if required:
                raise
            warn(f"{exc} (continuing without it)")
            continue
        for change in _changes(record, module, where):
            warn(change)
        if record.role == "plugin":
            _named.setdefault(record.module, f"{record.given_as or 'plugin'} (recorded)")
        imported.append(record.module)
    return imported


def with_agent_modules(
    records: Iterable[UserModule], agent_specs: Iterable[str]
) -> list[UserModule]:
    """``records`` and, for each ``python:module:attr`` agent spec whose module they do not
    name (a manifest written before modules were recorded, or edited), a record of it: so
    `--resume` imports every agent module through the guard of ``restore_user_modules`` before
    the agents are built."""
    result = list(records)
    named = {r.module for r in result}
    for spec in agent_specs:
        module = (
            spec.removeprefix("python:").partition(":")[0] if spec.startswith("python:") else ""
        )
        if module and module not in named:
            named.add(module)
            result.append(UserModule(module=module, role="agent", given_as=spec))
    return result


def check_input_files(
    records: Iterable[InputFile], where: str, warn: Callable[[str], None]
) -> None:
    """Warn about every recorded input file that changed (or went) since the run."""
    for record in records:
        if record.sha256 is None:
            continue
        digest, _ = path_sha256(Path(record.path))
        if digest is None:
            warn(f"the run's {record.role} {record.path} ({where}) is gone or unreadable")
        elif digest != record.sha256:
            warn(
                f"the run's {record.role} {record.path} has changed since the run recorded in "
                f"{where}: results may differ from the recorded ones"
            )


def restore_run_inputs(
    run_dir: Path | str,
    *,
    roles: Collection[ModuleRole] = TOOL_ROLES,
    required: bool = True,
    check_files: bool = True,
    warn: Callable[[str], None] = lambda _: None,
) -> list[str]:
    """:func:`restore_user_modules` for the run directory ``run_dir`` (its manifest), and, with
    ``check_files``, a warning for each input file changed since. Nothing happens when
    ``run_dir`` holds no readable manifest: whoever reads it next says why."""
    path = Path(run_dir) / MANIFEST
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return []
    imported = restore_user_modules(
        manifest.user_modules,
        str(path),
        roles=roles,
        required=required,
        warn=warn,
        run_dir=Path(run_dir),
    )
    if check_files:
        check_input_files(manifest.input_files, str(path), warn)
    return imported


def differing_run_inputs(run_dirs: Iterable[Path | str]) -> list[str]:
    """What the runs (shards to merge) recorded differently: a plugin, toolkit or agent module
    of another content or version, or a pack or toolkit spec of another content. Runs whose
    manifest cannot be read are left to the merge, which says why."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    problems: list[str] = []
    for run_dir in run_dirs:
        try:
            manifest = Manifest.model_validate_json((Path(run_dir) / MANIFEST).read_bytes())
        except (OSError, ValueError):
            continue
        facts = [
            (("module", m.module), f"{m.sha256} {m.version}", _what(m) + f" {m.module!r}")
            for m in manifest.user_modules
        ]
        facts += [  # the module's whole package, where both runs recorded it
            (("package", m.module), m.package_sha256, _what(m) + f" {m.module!r}")
            for m in manifest.user_modules
            if m.package_sha256 is not None
        ]
        facts += [
            (("file", f"{f.role} {Path(f.path).name}"), str(f.sha256), f"{f.role} {f.path}")
            for f in manifest.input_files
            if f.sha256 is not None
        ]
        said: set[str] = set()
        for key, value, label in facts:
            first = seen.setdefault(key, (value, str(run_dir)))
            if first[0] != value and label not in said:
                said.add(label)
                problems.append(
                    f"{first[1]} and {run_dir} recorded different contents of the {label}: "
                    "their episodes may not be comparable"
                )
    return problems
