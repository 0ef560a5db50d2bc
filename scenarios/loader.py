"""Loading scenario packs from YAML, reporting every problem with file, scenario and field.

A pack is a directory (optional `pack.yaml` with name/description, plus scenario files: every
`*.yaml` and `*.yml`, in any case) or a single YAML (or JSON) file holding one scenario, a list of
scenarios, or `{scenarios: [...], code_tasks: [...]}` (either list or both, nothing beside them:
any other top-level key is an error, as is a `scenarios:` or `code_tasks:` key in
`pack.yaml`, which would otherwise be dropped unread). Other files in a pack directory that look
like scenario data (`*.json`) are not read, and each is reported as an ignored file (a warning).
Authors fix files in batches, so validation collects all problems instead of stopping at the
first.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from scenarios.checks import ParametersOf, ToolkitTools, declared_parameters, scenario_findings
from scenarios.code_tasks import CodeTask
from scenarios.importers import looks_like_toolemu_cases, toolemu_case_to_raw
from scenarios.model import Pack, Scenario
from scenarios.safe_yaml import load_yaml

PACK_META_FILE = "pack.yaml"
_YAML_SUFFIXES = (".yaml", ".yml")
# Files in a pack directory that look like scenario data but are not read there (a JSON file is
# read only when it is the pack itself): each is reported, never skipped in silence.
_IGNORED_DATA_SUFFIXES = (".json",)


class DuplicateJSONKeyError(ValueError):
    """JSON objects with the same key twice (``json`` silently keeps the last value); one
    message per duplicate, in ``duplicates``."""

    def __init__(self, duplicates: list[str]) -> None:
        self.duplicates = duplicates
        super().__init__("; ".join(duplicates))


def _load_json(text: str) -> Any:
    """``json.loads``, refusing (``DuplicateJSONKeyError``, naming every one) a key given
    twice in one object."""
    duplicates: list[str] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:
                others = ", ".join(dict.fromkeys(k for k, _ in pairs))
                duplicates.append(
                    f"duplicate key {key!r} in the object with keys {others[:200]} (JSON "
                    "readers keep only the last value; give each key once)"
                )
            found[key] = value
        return found

    data = json.loads(text, object_pairs_hook=pairs_hook)
    if duplicates:
        raise DuplicateJSONKeyError(duplicates)
    return data


@dataclass(frozen=True)
class Problem:
    """One finding, located: ``str()`` gives ``FILE [SCENARIO] FIELD: MESSAGE``. ``severity``
    is ``error`` for what stops a pack from loading (``PackContents.problems``) and ``warning``
    for what ``propensity validate`` prints without failing (``PackContents.warnings``)."""

    file: str
    scenario_id: str | None
    field: str | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file
        if self.scenario_id:
            where += f" [{self.scenario_id}]"
        if self.field:
            where += f" {self.field}"
        return f"{where}: {self.message}"


class ScenarioLoadError(Exception):
    """Raised when a pack cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def _field_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for an invalid mapping key: the key is the field
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _validation_problems(
    exc: ValidationError, file: str, scenario_id: str | None, prefix: str = ""
) -> list[Problem]:
    problems = []
    for error in exc.errors():
        field = _field_path(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(
            Problem(file, scenario_id, (prefix + field) if field else (prefix or None), message)
        )
    return problems


def _documents(path: Path) -> tuple[list[tuple[dict[str, Any], str]], list[Problem]]:
    """The raw scenario (or code task) mappings in one file, each with its field prefix."""
    try:
        text = path.read_text(encoding="utf-8")
        # JSON is parsed as JSON: YAML rejects some of its escapes (surrogate pairs).
        data = _load_json(text) if path.suffix.lower() == ".json" else load_yaml(text)
    except DuplicateJSONKeyError as exc:
        return [], [Problem(str(path), None, None, message) for message in exc.duplicates]
    except json.JSONDecodeError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})"
        return [], [Problem(str(path), None, None, f"not valid JSON{where}: {exc.msg}")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return [], [Problem(str(path), None, None, f"not valid YAML{where}: {exc}")]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(str(path), None, None, f"cannot read file: {exc}")]
    except (ValueError, RecursionError) as exc:  # huge integers, JSON nested too deep, size
        return [], [Problem(str(path), None, None, f"cannot load: {str(exc)[:300]}")]
    if looks_like_toolemu_cases(data):
        cases: list[tuple[dict[str, Any], str]] = []
        unreadable: list[Problem] = []
        for i, case in enumerate(data):
            try:
                cases.append((toolemu_case_to_raw(case, i), f"[{i}]."))
            except (TypeError, AttributeError, ValueError, KeyError) as exc:
                unreadable.append(
                    Problem(str(path), None, f"[{i}]", f"not a readable ToolEmu case: {exc}")
                )
        return cases, unreadable
    if isinstance(data, dict) and any(key in data for key in _LIST_KEYS):
        # Both lists are read; any other key beside them would be dropped, so it is refused.
        lists = [(key, data[key]) for key in _LIST_KEYS if key in data]
        problems = [
            Problem(str(path), None, str(key), _stray_key_message(key))
            for key in data
            if key not in _LIST_KEYS
        ]
    elif isinstance(data, dict):
        return [(data, "")], []
    else:
        lists, problems = [("", data)], []
    found: list[tuple[dict[str, Any], str]] = []
    for prefix, items in lists:
        what = "code task" if prefix == "code_tasks" else "scenario"
        if not isinstance(items, list):
            problems.append(Problem(str(path), None, prefix or None, f"expected a list of {what}s"))
            continue
        for index, item in enumerate(items):
            label = f"{prefix}[{index}]"
            if isinstance(item, dict):
                found.append((item, label + "."))
            else:
                problems.append(Problem(str(path), None, label, f"expected a {what} mapping"))
    return found, problems


# The top-level lists a scenario file may hold (together, and nothing beside them).
_LIST_KEYS = ("scenarios", "code_tasks")


def _stray_key_message(key: Any) -> str:
    return (
        f"not read: the top-level key {key!r} sits beside `scenarios:`/`code_tasks:`, and a "
        "file with those lists holds nothing else (a scenario's fields go inside an item of "
        "`scenarios:`, a pack's name, description and version in the pack directory's "
        "pack.yaml); move or remove it"
    )


# No field of a scenario needs more text than this; a longer one is a mistake or an attack.
MAX_TEXT = 200_000


def _long_strings(value: Any, path: str) -> Iterable[str]:
    """Field paths of strings longer than ``MAX_TEXT`` (the data is already depth-bounded)."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            yield path or "(document)"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _long_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _long_strings(item, f"{path}[{index}]")


def _scenario_files(path: Path) -> tuple[list[Path], list[Path]]:
    """The files of a pack that are read (a single file, or every ``*.yaml``/``*.yml`` under a
    directory, in any case, but ``pack.yaml``), and those that look like scenario data but are
    not read (``*.json`` under a directory: a JSON file is read only as the pack itself)."""
    if path.is_file():
        return [path], []
    files = sorted(p for p in path.rglob("*") if p.is_file())
    read = [p for p in files if p.suffix.lower() in _YAML_SUFFIXES and p.name != PACK_META_FILE]
    ignored = [p for p in files if p.suffix.lower() in _IGNORED_DATA_SUFFIXES]
    return read, ignored


@dataclass
class PackContents:
    scenarios: list[Scenario]
    code_tasks: list[CodeTask]
    problems: list[Problem]
    # Doubtful but valid declarations (``propensity validate`` prints them and fails on them
    # only with --strict): the ``warning`` findings of ``scenarios.checks`` (pressure level
    # gaps, misaligned example calls that reach no harm, the world graph's warnings).
    warnings: list[Problem] = field(default_factory=list)


def validate_path(path: str | Path) -> tuple[list[Scenario], list[Problem]]:
    """Every valid scenario under `path`, and every problem found along the way."""
    contents = read_pack_contents(path)
    return contents.scenarios, contents.problems


def read_pack_contents(
    path: str | Path,
    *,
    parameters_of: ParametersOf = declared_parameters,
    toolkits: ToolkitTools | None = None,
) -> PackContents:
    """Every valid scenario and code task under `path`, and every problem found.

    A scenario the model accepts is also checked by ``scenarios.checks.scenario_findings``:
    its ``error`` findings are problems (the scenario stays out of ``scenarios``, so a pack
    with one is refused by ``load_pack``), its ``warning`` findings go to ``warnings``.
    ``parameters_of`` gives each tool's arguments schema for those checks (by default the
    schema a proxy tool declares; ``propensity validate`` passes one that also resolves
    toolkit-backed tools through the tool registry); ``toolkits`` the loaded specs of open
    scenarios' toolkits, against which their world graphs are checked (``--toolkits``)."""
    root = Path(path)
    if not root.exists():
        return PackContents([], [], [Problem(str(root), None, None, "no such file or directory")])
    scenarios: list[Scenario] = []
    code_tasks: list[CodeTask] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    first_seen: dict[str, str] = {}
    files, ignored = _scenario_files(root)
    warnings += [
        Problem(
            str(file),
            None,
            None,
            "ignored file: a pack directory reads only *.yaml and *.yml files (pass a JSON "
            "scenario file as the suite by itself, or convert it to YAML)",
            "warning",
        )
        for file in ignored
    ]
    for file in files:
        documents, file_problems = _documents(file)
        problems.extend(file_problems)
        for raw, prefix in documents:
            raw_id = raw.get("id")
            scenario_id = raw_id if isinstance(raw_id, str) else None
            oversized = list(_long_strings(raw, prefix.rstrip(".")))
            if oversized:
                problems += [
                    Problem(str(file), scenario_id, where, f"text longer than {MAX_TEXT:,} chars")
                    for where in oversized[:5]
                ]
                continue
            model: type[Scenario] | type[CodeTask] = (
                CodeTask if prefix.startswith("code_tasks") else Scenario
            )
            try:
                item = model.model_validate(raw)
            except ValidationError as exc:
                problems.extend(_validation_problems(exc, str(file), scenario_id, prefix))
                if model is Scenario:
                    # One pass reports everything: check what the rest of the scenario says.
                    problems += _salvaged_findings(
                        raw, exc, str(file), scenario_id, prefix, parameters_of, toolkits
                    )
                continue
            if item.id in first_seen:
                problems.append(
                    Problem(
                        str(file),
                        item.id,
                        prefix + "id",
                        f"duplicate id (first defined in {first_seen[item.id]})",
                    )
                )
                continue
            first_seen[item.id] = str(file)
            if isinstance(item, CodeTask):
                code_tasks.append(item)
                continue
            findings = [
                Problem(str(file), item.id, prefix + f.field, f.message, f.severity)
                for f in scenario_findings(item, parameters_of, toolkits)
            ]
            errors = [finding for finding in findings if finding.severity == "error"]
            problems += errors
            warnings += [finding for finding in findings if finding.severity == "warning"]
            if not errors:
                scenarios.append(item)
    if not scenarios and not code_tasks and not problems:
        problems.append(Problem(str(root), None, None, "no scenarios found"))
    problems += _pack_meta_problems(root)
    return PackContents(scenarios, code_tasks, problems, warnings)


# Top-level fields without which the rest of a scenario cannot be checked meaningfully (the
# world graph names tools; conditions name their parameters): never salvaged by removal.
_STRUCTURAL = frozenset({"id", "tools", "world"})


def _salvaged_findings(
    raw: dict[str, Any],
    exc: ValidationError,
    file: str,
    scenario_id: str | None,
    prefix: str,
    parameters_of: ParametersOf,
    toolkits: ToolkitTools | None = None,
    rounds: int = 3,
) -> list[Problem]:
    """The ``scenario_findings`` of a scenario the model refused, checked with the refused
    parts taken out, so one ``validate`` pass reports every mistake (a misspelt pressure
    category must not hide a misspelt world condition until it is fixed).

    A refused part is removed at its nearest mapping key (never a list item: the remaining
    items keep their indices, so every finding's field path is the file's); a refusal inside a
    structural field (``id``, ``tools``, ``world``) stops the salvage, as does a scenario still
    refused after ``rounds`` removals. Findings at or under a removed path are dropped."""
    salvaged = copy.deepcopy(raw)
    removed: list[tuple[Any, ...]] = []
    errors = exc.errors()
    for _ in range(rounds):
        for error in errors:
            path = _removable(salvaged, tuple(error["loc"]))
            if path is None or (len(path) == 1 and path[0] in _STRUCTURAL):
                return []
            parent = salvaged
            for part in path[:-1]:
                parent = parent[part]
            if isinstance(parent, dict) and path[-1] in parent:
                del parent[path[-1]]
                removed.append(path)
        try:
            item = Scenario.model_validate(salvaged)
        except ValidationError as again:
            errors = again.errors()
            continue
        gone = [prefix + _field_path(path) for path in removed]
        return [
            Problem(file, scenario_id, prefix + f.field, f.message, f.severity)
            for f in scenario_findings(item, parameters_of, toolkits)
            if not any(_related(prefix + f.field, where) for where in gone)
        ]
    return []


def _related(field: str, removed: str) -> bool:
    """Whether a finding at ``field`` is at, under or above a removed path (a finding about a
    transition whose condition was removed is about the salvage, not the file)."""
    return any(
        longer == shorter or longer.startswith((shorter + ".", shorter + "["))
        for longer, shorter in ((field, removed), (removed, field))
    )


def _removable(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The longest prefix of ``loc`` that ends at an existing mapping key of ``data``."""
    best: tuple[Any, ...] | None = None
    node = data
    for depth, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            best = loc[: depth + 1]
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    return best


def _pack_meta_problems(root: Path) -> list[Problem]:
    """What `run` would refuse in pack.yaml, so `validate` says it first."""
    try:
        meta = _pack_meta(root)
    except ScenarioLoadError as exc:
        return exc.problems
    meta_file = root / PACK_META_FILE if root.is_dir() else root
    # The pack's scenarios and code tasks are its files: a list here would be dropped unread.
    problems = [
        Problem(
            str(meta_file),
            None,
            key,
            f"not read: pack.yaml does not hold {key.replace('_', ' ')}; write them in a "
            f"*.yaml file beside it (`{key}: [...]`"
            + (", or one scenario per file" if key == "scenarios" else "")
            + ") and remove this key from pack.yaml",
        )
        for key in _LIST_KEYS
        if key in meta
    ]
    meta = {k: v for k, v in meta.items() if k not in _LIST_KEYS}
    try:
        Pack.model_validate(meta)
    except ValidationError as exc:
        return problems + _validation_problems(exc, str(meta_file), None)
    return problems


def _pack_meta(root: Path) -> dict[str, Any]:
    meta_file = root / PACK_META_FILE if root.is_dir() else None
    if meta_file is not None and meta_file.is_file():
        try:
            data = load_yaml(meta_file.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, ValueError, OSError, UnicodeDecodeError) as exc:
            raise ScenarioLoadError([Problem(str(meta_file), None, None, str(exc)[:300])]) from None
        if not isinstance(data, dict):
            raise ScenarioLoadError([Problem(str(meta_file), None, None, "expected a mapping")])
        return data
    from scenarios.model import slug

    return {"name": slug(root.stem) or "pack"}


def builtin_packs_dir() -> Path:
    return Path(str(resources.files("scenarios") / "packs"))


def builtin_packs() -> list[str]:
    root = builtin_packs_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


def resolve_pack_path(name_or_path: str | Path) -> Path:
    """A built-in pack name or a filesystem path; a path wins when both exist."""
    candidate = Path(name_or_path)
    if candidate.exists():
        return candidate
    builtin = builtin_packs_dir() / str(name_or_path)
    if builtin.is_dir():
        return builtin
    known = ", ".join(builtin_packs())
    raise ScenarioLoadError(
        [Problem(str(name_or_path), None, None, f"no such pack or path (built-in packs: {known})")]
    )


def load_pack(
    name_or_path: str | Path,
    *,
    parameters_of: ParametersOf = declared_parameters,
    toolkits: ToolkitTools | None = None,
) -> Pack:
    """Load a pack, refusing it whole if any scenario in it has a problem (an error of
    ``read_pack_contents``, with the same ``parameters_of`` and ``toolkits``); warnings do not
    refuse it."""
    root = resolve_pack_path(name_or_path)
    contents = read_pack_contents(root, parameters_of=parameters_of, toolkits=toolkits)
    if contents.problems:
        raise ScenarioLoadError(contents.problems)
    meta = _pack_meta(root)
    meta.pop("scenarios", None)
    meta.pop("code_tasks", None)
    try:
        return Pack.model_validate(meta).model_copy(
            update={"scenarios": contents.scenarios, "code_tasks": contents.code_tasks}
        )
    except ValidationError as exc:
        raise ScenarioLoadError(_validation_problems(exc, str(root), None)) from None
