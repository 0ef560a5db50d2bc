"""Toolkit specifications: tools that an LLM or a Python function emulates for the agent.

Scenarios must be able to hand an agent any tool (email, banking, cloud consoles, lab equipment)
without anyone writing a backend for it first. A toolkit spec says what such tools take, return
and raise, in enough detail that a model can call them and an emulator can answer plausibly.

The format follows ToolEmu's (toolkit -> tools -> parameters / returns / exceptions, tools called
by toolkit name + tool name, e.g. `TerminalExecute`) so ToolEmu's 38 toolkits import losslessly,
while authored YAML gets the same field-path problem reports as scenario packs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from scenarios.base import StrictModel
from scenarios.loader import Problem, _field_path

__all__ = [
    "JSON_TYPES",
    "MAX_FUNCTION_DESCRIPTION",
    "MAX_FUNCTION_NAME",
    "ExceptionSpec",
    "ParameterSpec",
    "ReturnSpec",
    "ToolDef",
    "Toolkit",
    "ToolkitLoadError",
    "describe_tool",
    "dump_toolkit",
    "dump_toolkits",
    "function_schemas",
    "import_toolemu_toolkits",
    "load_toolkits",
    "parameters_schema",
    "returns_schema",
    "tool_function_schema",
]

JSONType = Literal["string", "integer", "number", "boolean", "array", "object", "null"]
JSON_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "array", "object", "null")
# Provider limits (OpenAI rejects the whole request beyond them, naming only the tool index).
MAX_FUNCTION_NAME = 64
MAX_FUNCTION_DESCRIPTION = 1024

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SUFFIXES = (".yaml", ".yml", ".json")


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not an identifier: it must start with a letter or underscore and "
            "contain only letters, digits and underscores"
        )
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


def _duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def _unique_names(kind: str, items: list[Any]) -> None:
    repeated = _duplicates(item.name for item in items)
    if repeated:
        raise ValueError(f"duplicate {kind} name(s): " + ", ".join(repeated))


def _with_array_items(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy in which every array schema has `items`.

    JSON Schema reads a missing `items` as "anything", but OpenAI rejects such function
    schemas outright ("array schema missing items"); `{}` means the same and is accepted.
    """
    result = dict(schema)
    kind = result.get("type")
    if (kind == "array" or (isinstance(kind, list) and "array" in kind)) and "items" not in result:
        result["items"] = {}
    for key in ("items", "additionalProperties", "not", "contains"):
        if isinstance(result.get(key), dict):
            result[key] = _with_array_items(result[key])
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        if isinstance(result.get(key), dict):
            result[key] = {
                name: _with_array_items(sub) if isinstance(sub, dict) else sub
                for name, sub in result[key].items()
            }
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(result.get(key), list):
            result[key] = [_with_array_items(s) if isinstance(s, dict) else s for s in result[key]]
    return result


class ParameterSpec(StrictModel):
    """One argument of a tool.

    `items` is a JSON schema because array elements are often scalars that need no name;
    `properties` reuses this format so nested fields keep their own descriptions and
    `required` flags. `default: null` means "no default" (a null default says nothing).
    """

    name: Identifier
    type: JSONType
    description: str = Field(min_length=1)
    required: bool = False
    default: Any = None
    enum: list[Any] | None = Field(default=None, min_length=1)
    items: dict[str, Any] | None = None
    properties: list[ParameterSpec] | None = None

    @field_validator("items")
    @classmethod
    def _items_is_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                Draft202012Validator.check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return value

    @field_validator("properties")
    @classmethod
    def _unique_properties(cls, value: list[ParameterSpec] | None) -> list[ParameterSpec] | None:
        if value is not None:
            _unique_names("property", value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpec:
        if self.items is not None and self.type != "array":
            raise ValueError(f"`items` only applies to arrays, not to type {self.type!r}")
        if self.properties is not None and self.type != "object":
            raise ValueError(f"`properties` only applies to objects, not to type {self.type!r}")
        if self.enum is not None:
            type_check = Draft202012Validator({"type": self.type})
            wrong = [value for value in self.enum if not type_check.is_valid(value)]
            if wrong:
                raise ValueError(f"enum values {wrong!r} are not of type {self.type!r}")
            if len({json.dumps(value, sort_keys=True) for value in self.enum}) != len(self.enum):
                raise ValueError("enum values must be unique")
        if self.default is not None:
            if self.required:
                raise ValueError("a required parameter cannot have a default")
            error = next(
                iter(Draft202012Validator(_value_schema(self)).iter_errors(self.default)), None
            )
            if error is not None:
                raise ValueError(f"default {self.default!r} does not fit: {error.message}")
        return self


class ReturnSpec(StrictModel):
    name: Identifier
    type: JSONType
    description: str = Field(min_length=1)


class ExceptionSpec(StrictModel):
    name: Identifier
    description: str = Field(min_length=1)


class ToolDef(StrictModel):
    """One tool; exception names may repeat (one entry per distinct cause, as ToolEmu does)."""

    name: Identifier
    summary: str = Field(min_length=1)
    parameters: list[ParameterSpec] = Field(default_factory=list)
    returns: list[ReturnSpec] = Field(default_factory=list)
    exceptions: list[ExceptionSpec] = Field(default_factory=list)

    @field_validator("parameters")
    @classmethod
    def _unique_parameters(cls, value: list[ParameterSpec]) -> list[ParameterSpec]:
        _unique_names("parameter", value)
        return value

    @field_validator("returns")
    @classmethod
    def _unique_returns(cls, value: list[ReturnSpec]) -> list[ReturnSpec]:
        _unique_names("return", value)
        return value


class Toolkit(StrictModel):
    """A family of tools the agent sees together, each called by its qualified name."""

    name: Identifier
    name_for_human: str | None = None
    description: str = Field(min_length=1)
    description_for_human: str | None = None
    category: str | None = None
    tools: list[ToolDef] = Field(min_length=1)
    source: str | None = None

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: list[ToolDef]) -> list[ToolDef]:
        _unique_names("tool", value)
        return value

    @model_validator(mode="after")
    def _callable_names(self) -> Toolkit:
        # Both checks protect the function-calling side: names a provider rejects, and names
        # for which `tool()` could not tell a short name from another tool's qualified one.
        too_long = [
            qualified
            for qualified in map(self.qualified_name, self.tools)
            if len(qualified) > MAX_FUNCTION_NAME
        ]
        if too_long:
            raise ValueError(
                f"qualified tool names longer than {MAX_FUNCTION_NAME} characters: "
                + ", ".join(too_long)
            )
        short = {tool.name for tool in self.tools}
        clashes = [q for q in map(self.qualified_name, self.tools) if q in short]
        if clashes:
            raise ValueError(
                "a tool's name equals another tool's qualified name: " + ", ".join(clashes)
            )
        return self

    def qualified_name(self, tool: ToolDef | str) -> str:
        """ToolEmu's convention (toolkit + tool name): tools of different kits never clash."""
        return self.name + (tool if isinstance(tool, str) else tool.name)

    def tool(self, name: str) -> ToolDef:
        """The tool by short name (`Execute`) or by the qualified name a model calls it by."""
        for tool in self.tools:
            if name in (tool.name, self.qualified_name(tool)):
                return tool
        raise KeyError(name)


# --- schemas -----------------------------------------------------------------------------------


def _value_schema(parameter: ParameterSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": parameter.type, "description": parameter.description}
    if parameter.enum is not None:
        schema["enum"] = list(parameter.enum)
    if parameter.default is not None:
        schema["default"] = parameter.default
    if parameter.type == "array":
        schema["items"] = _with_array_items(parameter.items) if parameter.items is not None else {}
    if parameter.properties is not None:
        # Nested objects stay open: only the top level is closed, where unknown keys are a
        # misunderstanding of the tool rather than extra detail.
        schema["properties"] = {p.name: _value_schema(p) for p in parameter.properties}
        schema["required"] = [p.name for p in parameter.properties if p.required]
    return schema


def parameters_schema(tool: ToolDef) -> dict[str, Any]:
    """The arguments schema: closed, so misspelled arguments fail instead of vanishing."""
    return {
        "type": "object",
        "properties": {p.name: _value_schema(p) for p in tool.parameters},
        "required": [p.name for p in tool.parameters if p.required],
        "additionalProperties": False,
    }


def returns_schema(tool: ToolDef) -> dict[str, Any]:
    """The observation schema an emulated answer must meet; open, since extra detail is harmless."""
    properties: dict[str, Any] = {}
    for ret in tool.returns:
        schema: dict[str, Any] = {"type": ret.type, "description": ret.description}
        if ret.type == "array":
            schema["items"] = {}
        properties[ret.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": [ret.name for ret in tool.returns],
        "additionalProperties": True,
    }


def describe_tool(tool: ToolDef, limit: int = MAX_FUNCTION_DESCRIPTION) -> str:
    """What the model reads about a tool: the summary plus what it returns and raises.

    Function-calling schemas have no place for returns or errors, yet a model plans better
    knowing them. Detail is dropped in stages to stay within the provider's length limit.
    """
    summary = tool.summary.strip()
    full_returns = "\n".join(f"- {r.name} ({r.type}): {r.description}" for r in tool.returns)
    full_raises = "\n".join(f"- {e.name}: {e.description}" for e in tool.exceptions)
    brief_returns = ", ".join(f"{r.name} ({r.type})" for r in tool.returns)
    brief_raises = ", ".join(dict.fromkeys(e.name for e in tool.exceptions))
    stages = (
        (full_returns and f"Returns:\n{full_returns}", full_raises and f"Raises:\n{full_raises}"),
        (full_returns and f"Returns:\n{full_returns}", brief_raises and f"Raises: {brief_raises}."),
        (
            brief_returns and f"Returns: {brief_returns}.",
            brief_raises and f"Raises: {brief_raises}.",
        ),
    )
    text = ""
    for returns, raises in stages:
        text = "\n\n".join(part for part in (summary, returns, raises) if part)
        if len(text) <= limit:
            return text
    return text[: limit - 1] + "…"


def tool_function_schema(
    toolkit: Toolkit, tool: ToolDef, description_limit: int = MAX_FUNCTION_DESCRIPTION
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": toolkit.qualified_name(tool),
            "description": describe_tool(tool, description_limit),
            "parameters": parameters_schema(tool),
        },
    }


def function_schemas(
    toolkit: Toolkit, description_limit: int = MAX_FUNCTION_DESCRIPTION
) -> list[dict[str, Any]]:
    """OpenAI function-calling schemas (litellm translates them for other providers)."""
    return [tool_function_schema(toolkit, tool, description_limit) for tool in toolkit.tools]


# --- loading -----------------------------------------------------------------------------------


class ToolkitLoadError(Exception):
    """Raised when toolkits cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


def _validation_problems(
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


def _raw_duplicates(
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
        repeated = _duplicates(name for name in names if isinstance(name, str))
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


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _read(path: Path) -> tuple[Any, list[Problem]]:
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


def _check_unique(
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
        data, read_problems = _read(file)
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
                problems.extend(_validation_problems(exc, str(file), name, prefix))
                problems.extend(_raw_duplicates(raw, str(file), name, prefix))
    toolkits = _check_unique(loaded, problems)
    if not toolkits and not problems:
        problems.append(Problem(str(root), None, None, "no toolkits found"))
    if problems:
        raise ToolkitLoadError(_dedupe(problems))
    return toolkits


# --- ToolEmu -----------------------------------------------------------------------------------

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
    data, problems = _read(file)
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
            problems.extend(_validation_problems(exc, str(file), label, prefix, renamed))
            problems.extend(_raw_duplicates(raw, str(file), label, prefix))
            continue
        if not entry_problems:
            loaded.append((toolkit, str(file), prefix))
    toolkits = _check_unique(loaded, problems)
    if problems:
        raise ToolkitLoadError(_dedupe(problems))
    return toolkits


# --- dumping -----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, so dumped toolkits stay pleasant to edit."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def dump_toolkit(toolkit: Toolkit) -> str:
    """YAML that `load_toolkits` reads back into an equal Toolkit (defaults left out)."""
    return _dump(toolkit.model_dump(mode="json", exclude_defaults=True))


def dump_toolkits(toolkits: Iterable[Toolkit]) -> str:
    return _dump(
        {
            "toolkits": [
                toolkit.model_dump(mode="json", exclude_defaults=True) for toolkit in toolkits
            ]
        }
    )
