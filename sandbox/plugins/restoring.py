"""A run's recorded user code imported again (:func:`restore_user_modules`,
:func:`restore_run_inputs`) by the commands that rebuild its tools or agents, with a warning for
each module or input file that changed since the run (:func:`check_input_files`), and what runs
to merge recorded differently (:func:`differing_run_inputs`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from types import ModuleType

from sandbox.import_path import _run_dirs_read, make_cwd_importable
from sandbox.plugins.guard import _import_recorded, _what
from sandbox.plugins.loading import PluginError, _named
from sandbox.plugins.recording import describe_module, path_sha256
from sandbox.results.store import MANIFEST, Manifest
from sandbox.run_inputs import InputFile, ModuleRole, UserModule

#: Roles a run needs to rebuild its tools (verify --against sandbox, branch, merge's pack);
#: `--resume` needs every role.
TOOL_ROLES: frozenset[ModuleRole] = frozenset({"plugin", "toolkit"})
ALL_ROLES: frozenset[ModuleRole] = frozenset({"plugin", "toolkit", "agent"})


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
