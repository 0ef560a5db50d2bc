"""PB's staged files: which one to read in each workspace, the walk down its nesting to each
scenario, and a reader of one scenario's fields that names the file and JSON path of every
missing or broken one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The staged files, most complete first.
STAGE_FILES = (
    "scenarios_messages_single.json",
    "scenarios_messages.json",
    "scenarios_policies.json",
    "scenarios_funcs.json",
    "scenarios_states.json",
)
TAG = "propensitybench"


class PropensityBenchImportError(ValueError):
    """A PB file that cannot be imported; lists every problem as ``file: json.path: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class _Where:
    """A position in a PB file, for messages that say exactly where a problem is."""

    file: Path
    path: tuple[str, ...]

    def __truediv__(self, key: str | int) -> _Where:
        return _Where(self.file, (*self.path, str(key)))

    def __str__(self) -> str:
        return f"{self.file}: {'.'.join(self.path) or '(top level)'}"


def find_stage_files(path: str | Path) -> list[Path]:
    """The file to import for each workspace under `path`: the most complete stage present.

    `path` may be one staged file, a workspace directory, a domain directory, or a root holding
    domains; a workspace is any directory that directly holds a staged file.
    """
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise PropensityBenchImportError([f"{root}: no such file or directory"])
    workspaces = sorted({p.parent for name in STAGE_FILES for p in root.rglob(name)})
    chosen = []
    for workspace in workspaces:
        for name in STAGE_FILES:
            if (workspace / name).is_file():
                chosen.append(workspace / name)
                break
    if not chosen:
        raise PropensityBenchImportError(
            [f"{root}: no PropensityBench files found (looked for {', '.join(STAGE_FILES)})"]
        )
    return chosen


@dataclass(frozen=True)
class _Context:
    domain: str
    workspace: str
    role_key: str
    role: Mapping[str, Any]
    scenario_key: str


def _walk(
    data: Any, where: _Where, problems: list[str]
) -> Iterable[tuple[_Where, _Context, Mapping[str, Any]]]:
    """Every scenario mapping in a PB file, with its position and its domain/workspace/role."""
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping of domains")
        return
    for domain, workspaces in data.items():
        if not isinstance(workspaces, dict):
            problems.append(f"{where / domain}: expected a mapping of workspaces")
            continue
        for workspace, roles in workspaces.items():
            if not isinstance(roles, dict):
                problems.append(f"{where / domain / workspace}: expected a mapping of roles")
                continue
            for role_key, role in roles.items():
                at_role = where / domain / workspace / role_key
                scenarios = role.get("scenarios") if isinstance(role, dict) else None
                if not isinstance(scenarios, dict):
                    problems.append(f"{at_role / 'scenarios'}: missing (expected a mapping)")
                    continue
                for scenario_key, raw in scenarios.items():
                    at = at_role / "scenarios" / scenario_key
                    if not isinstance(raw, dict):
                        problems.append(f"{at}: expected a scenario mapping")
                        continue
                    yield at, _Context(domain, workspace, role_key, role, scenario_key), raw


class _Reader:
    """Reads fields of one PB scenario, recording each missing or mistyped one as a problem."""

    def __init__(self, raw: Mapping[str, Any], where: _Where, problems: list[str]) -> None:
        self.raw = raw
        self.where = where
        self.problems = problems
        self.ok = True

    def get(self, *keys: str | int, kind: type = str, required: bool = True) -> Any:
        value: Any = self.raw
        where = self.where
        for key in keys:
            where = where / key
            if isinstance(key, int) and isinstance(value, list) and key < len(value):
                value = value[key]
            elif isinstance(key, str) and isinstance(value, dict) and key in value:
                value = value[key]
            else:
                if required:
                    self.fail(where, "missing")
                return None
        if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(where, f"expected a non-empty {_kind_name(kind)}")
            return None
        return value

    def at(self, *keys: str | int) -> _Where:
        where = self.where
        for key in keys:
            where = where / key
        return where

    def fail(self, where: _Where, message: str) -> None:
        self.ok = False
        problem = f"{where}: {message}"
        if problem not in self.problems:  # a missing parent is reported once, not per field
            self.problems.append(problem)


def _kind_name(kind: type) -> str:
    names: dict[type, str] = {str: "string", list: "list", dict: "mapping"}
    return names.get(kind, kind.__name__)
