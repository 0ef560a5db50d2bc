"""Importing ToolEmu's `all_toolkits.json`: every toolkit, tool, argument, return and exception."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import ValidationError

from scenarios.loader import Problem
from tools.toolkits.loading import (
    ToolkitLoadError,
    check_unique,
    dedupe,
    raw_duplicates,
    read_document,
    validation_problems,
)
from tools.toolkits.models import Toolkit

__all__ = ["import_toolemu_toolkits"]

_TOOLEMU_RENAMED = {"name_for_model": "name", "description_for_model": "description"}
_TOOLEMU_KEYS = frozenset(
    {"toolkit", "category", "name_for_human", "description_for_human", "tools", *_TOOLEMU_RENAMED}
)
# ToolEmu states optional arguments' defaults only in prose ("Default is 5.", "default: 10",
# "Default value is 'friends'."). Only literal values are taken; "Default is the current location"
# and the like stay prose.
_DEFAULT_PHRASE = re.compile(
    r"\bdefault(?:s to| value is| is|:)\s+"
    r"(?P<value>'[^']*'|\"[^\"]*\"|an empty string|true|false|-?\d+(?:\.\d+)?)"
    r"(?=[\s.,;)]|$)",
    re.IGNORECASE,
)


def _literal(text: str) -> Any:
    if text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered == "an empty string":
        return ""
    if lowered in ("true", "false"):
        return lowered == "true"
    return float(text) if "." in text else int(text)


def _stated_default(parameter: dict[str, Any]) -> Any:
    """The literal default a ToolEmu description states, if exactly one fits the type."""
    description, kind = parameter.get("description"), parameter.get("type")
    if parameter.get("required") or not isinstance(description, str):
        return None
    if kind not in ("string", "integer", "number", "boolean"):
        return None
    type_check = Draft202012Validator({"type": kind})
    values = [_literal(m.group("value")) for m in _DEFAULT_PHRASE.finditer(description)]
    fitting = [value for value in values if type_check.is_valid(value)]
    if len(values) != 1 or len(fitting) != 1:
        return None
    return fitting[0]


def _from_toolemu(raw: dict[str, Any], infer_defaults: bool) -> dict[str, Any]:
    converted: dict[str, Any] = {
        _TOOLEMU_RENAMED.get(key, key): value
        for key, value in raw.items()
        if key in _TOOLEMU_KEYS and key != "toolkit"  # unknown keys are reported separately
    }
    converted["source"] = "toolemu"
    tools = converted.get("tools")
    if not (infer_defaults and isinstance(tools, list)):
        return converted
    new_tools: list[Any] = []
    for tool in tools:
        if isinstance(tool, dict) and isinstance(tool.get("parameters"), list):
            parameters = []
            for parameter in tool["parameters"]:
                if isinstance(parameter, dict) and "default" not in parameter:
                    default = _stated_default(parameter)
                    if default is not None:
                        parameter = {**parameter, "default": default}
                parameters.append(parameter)
            tool = {**tool, "parameters": parameters}
        new_tools.append(tool)
    converted["tools"] = new_tools
    return converted


def import_toolemu_toolkits(path: str | Path, infer_defaults: bool = True) -> list[Toolkit]:
    """ToolEmu's `all_toolkits.json` as Toolkits, every tool, argument, return and exception.

    ToolEmu's own semantics are kept: a parameter without `required` is optional and a tool
    without `exceptions` raises none. `infer_defaults` lifts literal defaults stated in a
    parameter's description into `default`; the description itself is never changed.
    Problems are reported with paths into the ToolEmu file (`[3].tools[0].parameters[1].type`).
    """
    file = Path(path)
    if not file.is_file():
        raise ToolkitLoadError([Problem(str(file), None, None, "no such file")])
    data, problems = read_document(file)
    if problems:
        raise ToolkitLoadError(problems)
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ToolkitLoadError(
            [Problem(str(file), None, None, "expected a list of ToolEmu toolkits")]
        )
    loaded: list[tuple[Toolkit, str, str]] = []
    for index, raw in enumerate(data):
        prefix = f"[{index}]"
        if not isinstance(raw, dict):
            problems.append(Problem(str(file), None, prefix, "expected a toolkit mapping"))
            continue
        name = raw.get("name_for_model")
        label = name if isinstance(name, str) else None
        entry_problems = [
            Problem(str(file), label, f"{prefix}.{key}", "unknown ToolEmu key")
            for key in raw
            if key not in _TOOLEMU_KEYS
        ]
        class_name = raw.get("toolkit")
        if class_name is not None and isinstance(name, str) and class_name != name:
            # ToolEmu prefixes tool names with name_for_model; a different class name would be
            # lost silently, so it is surfaced instead.
            entry_problems.append(
                Problem(
                    str(file),
                    label,
                    f"{prefix}.toolkit",
                    f"toolkit {class_name!r} differs from name_for_model {name!r}",
                )
            )
        problems.extend(entry_problems)
        try:
            toolkit = Toolkit.model_validate(_from_toolemu(raw, infer_defaults))
        except ValidationError as exc:
            renamed = {new: old for old, new in _TOOLEMU_RENAMED.items()}
            problems.extend(validation_problems(exc, str(file), label, prefix, renamed))
            problems.extend(raw_duplicates(raw, str(file), label, prefix))
            continue
        if not entry_problems:
            loaded.append((toolkit, str(file), prefix))
    toolkits = check_unique(loaded, problems)
    if problems:
        raise ToolkitLoadError(dedupe(problems))
    return toolkits
