"""The toolkit spec records: Toolkit -> ToolDef -> ParameterSpec / ReturnSpec / ExceptionSpec.

The format follows ToolEmu's (toolkit -> tools -> parameters / returns / exceptions, tools called
by toolkit name + tool name, e.g. `TerminalExecute`). Every record is a strict pydantic model:
validation raises pydantic's ValidationError, which the loaders turn into field-path problems.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import AfterValidator, Field, field_validator, model_validator

from scenarios.base import StrictModel

__all__ = [
    "JSON_TYPES",
    "MAX_FUNCTION_DESCRIPTION",
    "MAX_FUNCTION_NAME",
    "ExceptionSpec",
    "Identifier",
    "JSONType",
    "ParameterSpec",
    "ReturnSpec",
    "ToolDef",
    "Toolkit",
    "duplicates",
    "value_schema",
]

JSONType = Literal["string", "integer", "number", "boolean", "array", "object", "null"]
JSON_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "array", "object", "null")
# Provider limits (OpenAI rejects the whole request beyond them, naming only the tool index).
MAX_FUNCTION_NAME = 64
MAX_FUNCTION_DESCRIPTION = 1024

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not an identifier: it must start with a letter or underscore and "
            "contain only letters, digits and underscores"
        )
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


def duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def _unique_names(kind: str, items: list[Any]) -> None:
    repeated = duplicates(item.name for item in items)
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
                iter(Draft202012Validator(value_schema(self)).iter_errors(self.default)), None
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


def value_schema(parameter: ParameterSpec) -> dict[str, Any]:
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
        schema["properties"] = {p.name: value_schema(p) for p in parameter.properties}
        schema["required"] = [p.name for p in parameter.properties if p.required]
    return schema
