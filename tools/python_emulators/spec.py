"""One `@tool` method as a ToolDef: its name, docstring and signature checked and combined.

A return entry may state its JSON type (`balance (number): ...`); one that does not is
described as a string, since every observation reaches the agent as text anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from tools.python_emulators.docstrings import ParsedDocstring, parse_docstring
from tools.python_emulators.signatures import parameter_specs, validation_reason
from tools.toolkits import ExceptionSpec, JSONType, ReturnSpec, ToolDef

__all__ = ["camel", "tooldef"]

# The type names a Returns entry may use; a `list[str]` or `dict, optional` counts as its base.
_TYPE_NAMES: dict[str, JSONType] = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "tuple": "array",
    "dict": "object",
    "object": "object",
    "none": "null",
    "null": "null",
}


def camel(name: str) -> str:
    """The tool name for a method name: `list_directory` -> `ListDirectory`."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _returns(parsed: ParsedDocstring, where: str, problems: list[str]) -> list[ReturnSpec]:
    specs: list[ReturnSpec] = []
    for entry in parsed.sections["returns"]:
        kind: JSONType = "string"
        if entry.type is not None:
            base = entry.type.split(",")[0].split("[")[0].strip().lower()
            if base not in _TYPE_NAMES:
                problems.append(f"{where}: return {entry.name!r} has unknown type {entry.type!r}")
                continue
            kind = _TYPE_NAMES[base]
        if entry.description:
            specs.append(ReturnSpec(name=entry.name, type=kind, description=entry.description))
    return specs


def tooldef(function: Callable[..., Any], where: str, problems: list[str]) -> ToolDef | None:
    """The ToolDef of a `@tool` method, or None with every problem appended to `problems`.

    `where` (the method's qualified name) starts each problem, so one TypeError can list all
    that is wrong with a toolkit at once.
    """
    doc = function.__doc__
    if not doc or not doc.strip():
        problems.append(f"{where}: a tool needs a docstring, the agent's only description of it")
        return None
    found: list[str] = []
    parsed = parse_docstring(doc, where, found)
    if parsed.readable and not parsed.summary:
        found.append(f"{where}: the docstring needs a summary paragraph before its sections")
    parameters = parameter_specs(function, parsed, where, found)
    returns = _returns(parsed, where, found)
    exceptions = [
        ExceptionSpec(name=e.name, description=e.description)
        for e in parsed.sections["raises"]
        if e.description
    ]
    problems.extend(found)
    if found:
        return None
    try:
        return ToolDef(
            name=camel(function.__name__),
            summary=parsed.summary,
            parameters=parameters,
            returns=returns,
            exceptions=exceptions,
        )
    except ValidationError as exc:
        problems.append(f"{where}: {validation_reason(exc)}")
        return None
