"""Reading toolkit specs from YAML/JSON files, refused whole with every problem found.

A file holds one toolkit mapping, a list of them, or `{toolkits: [...]}`; a directory is read
file by file (`*.yaml`, `*.yml`, `*.json`). Problems carry the file, the toolkit and a field
path (`toolkits[0].tools[1].parameters[0].type`), as scenario packs' problems do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from scenarios.loader import Problem, _field_path
from tools.toolkits.models import Toolkit, duplicates

__all__ = [
    "ToolkitLoadError",
    "check_unique",
    "dedupe",
    "load_toolkits",
    "raw_duplicates",
    "read_document",
    "validation_problems",
]

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SUFFIXES = (".yaml", ".yml", ".json")


class ToolkitLoadError(Exception):
    """Raised when toolkits cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def validation_problems(
    exc: ValidationError,
    file: str,
    toolkit: str | None,
    prefix: str,
    renamed: dict[str, str] | None = None,
) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        if renamed and loc and isinstance(loc[0], str):
            loc[0] = renamed.get(loc[0], loc[0])
        field = _field_path(loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "literal_error":
            message += f", not {error['input']!r}"
        path = f"{prefix}.{field}" if prefix and field else prefix or field
        problems.append(Problem(file, toolkit, path or None, message))
    return problems


def raw_duplicates(
    raw: dict[str, Any], file: str, toolkit: str | None, prefix: str
) -> list[Problem]:
    """Duplicate names found in the raw mapping.

    Pydantic skips a list's validators once an element fails, so a duplicate would only be
    reported after every other problem was fixed; authors fix files in batches.
    """
    found: list[Problem] = []

    def check(kind: str, items: Any, path: str) -> None:
        if not isinstance(items, list):
            return
        names = [item.get("name") for item in items if isinstance(item, dict)]
        repeated = duplicates(name for name in names if isinstance(name, str))
        if repeated:
            message = f"duplicate {kind} name(s): " + ", ".join(repeated)
            found.append(Problem(file, toolkit, path, message))

    def check_properties(parameters: Any, path: str) -> None:
        for index, parameter in enumerate(parameters if isinstance(parameters, list) else []):
            if isinstance(parameter, dict):
                here = f"{path}[{index}].properties"
                check("property", parameter.get("properties"), here)
                check_properties(parameter.get("properties"), here)

    base = f"{prefix}." if prefix else ""
    tools = raw.get("tools")
    check("tool", tools, base + "tools")
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        if isinstance(tool, dict):
            here = f"{base}tools[{index}]"
            check("parameter", tool.get("parameters"), here + ".parameters")
            check("return", tool.get("returns"), here + ".returns")
            check_properties(tool.get("parameters"), here + ".parameters")
    return found


def dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def read_document(path: Path) -> tuple[Any, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), None, None, f"cannot read file: {exc}")]
    if path.suffix == ".json":
        try:
            return json.loads(text), []
        except json.JSONDecodeError as exc:
            where = f" (line {exc.lineno}, column {exc.colno})"
            return None, [Problem(str(path), None, None, f"not valid JSON{where}: {exc.msg}")]
    try:
        return yaml.load(text, Loader=_SafeLoader), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return None, [Problem(str(path), None, None, f"not valid YAML{where}: {exc}")]


def _raw_toolkits(data: Any, file: str) -> tuple[list[tuple[Any, str]], list[Problem]]:
    """The raw toolkit entries of one document, each with its field path prefix."""
    if isinstance(data, dict) and "toolkits" in data:
        extra = [key for key in data if key != "toolkits"]
        problems = [Problem(file, None, str(key), "unknown key") for key in extra]
        items = data["toolkits"]
        if not isinstance(items, list):
            return [], [*problems, Problem(file, None, "toolkits", "expected a list of toolkits")]
        return [(item, f"toolkits[{i}]") for i, item in enumerate(items)], problems
    if isinstance(data, dict):
        return [(data, "")], []
    if isinstance(data, list):
        return [(item, f"[{i}]") for i, item in enumerate(data)], []
    if data is None:
        return [], [Problem(file, None, None, "no toolkits found (the file is empty)")]
    return [], [
        Problem(file, None, None, "expected a toolkit, a list of toolkits or {toolkits: [...]}")
    ]


def _toolkit_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix in _SUFFIXES and p.is_file())


def _looks_like_toolemu(raw: dict[str, Any]) -> bool:
    return "name_for_model" in raw and "description_for_model" in raw and "name" not in raw


def check_unique(
    toolkits: list[tuple[Toolkit, str, str]], problems: list[Problem]
) -> list[Toolkit]:
    first_seen: dict[str, str] = {}
    unique: list[Toolkit] = []
    for toolkit, file, prefix in toolkits:
        if toolkit.name in first_seen:
            field = f"{prefix}.name" if prefix else "name"
            message = f"duplicate toolkit name (first defined in {first_seen[toolkit.name]})"
            problems.append(Problem(file, toolkit.name, field, message))
            continue
        first_seen[toolkit.name] = file
        unique.append(toolkit)
    return unique


def load_toolkits(path: str | Path) -> list[Toolkit]:
    """Toolkits from a YAML/JSON file or a directory of them, refused whole on any problem.

    A file holds one toolkit mapping, a list of them, or `{toolkits: [...]}`.
    """
    root = Path(path)
    if not root.exists():
        raise ToolkitLoadError([Problem(str(root), None, None, "no such file or directory")])
    problems: list[Problem] = []
    loaded: list[tuple[Toolkit, str, str]] = []
    for file in _toolkit_files(root):
        data, read_problems = read_document(file)
        problems.extend(read_problems)
        if read_problems:
            continue
        entries, entry_problems = _raw_toolkits(data, str(file))
        problems.extend(entry_problems)
        for raw, prefix in entries:
            if not isinstance(raw, dict):
                problems.append(Problem(str(file), None, prefix or None, "expected a mapping"))
                continue
            name = raw.get("name") if isinstance(raw.get("name"), str) else None
            if _looks_like_toolemu(raw):
                name = (
                    raw.get("name_for_model")
                    if isinstance(raw.get("name_for_model"), str)
                    else None
                )
                problems.append(
                    Problem(
                        str(file),
                        name,
                        prefix or None,
                        "this is ToolEmu's format: use import_toolemu_toolkits()",
                    )
                )
                continue
            try:
                loaded.append((Toolkit.model_validate(raw), str(file), prefix))
            except ValidationError as exc:
                problems.extend(validation_problems(exc, str(file), name, prefix))
                problems.extend(raw_duplicates(raw, str(file), name, prefix))
    toolkits = check_unique(loaded, problems)
    if not toolkits and not problems:
        problems.append(Problem(str(root), None, None, "no toolkits found"))
    if problems:
        raise ToolkitLoadError(dedupe(problems))
    return toolkits
