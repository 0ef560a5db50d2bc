"""A tool method's parameters as ParameterSpecs: types from its annotations, via pydantic.

Each annotation's JSON schema comes from `pydantic.TypeAdapter(annotation).json_schema()` and
is reduced to what a ParameterSpec holds (a JSON type, an optional `enum`, array `items`).
Annotations whose schema says more than that (a `format`, a union, a title, a `$ref`) are
refused: the method would receive plain JSON values (a str, not a datetime or an Enum member),
so the schema would promise the agent something the method does not get.
"""

from __future__ import annotations

import copy
import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tools.python_emulators.docstrings import ParsedDocstring
from tools.toolkits import JSONType, ParameterSpec

__all__ = ["json_type", "parameter_specs", "validation_reason"]

_TYPES: frozenset[str] = frozenset({"string", "integer", "number", "boolean", "array", "object"})
_NULL = {"type": "null"}
_PASSABLE = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _reduce(schema: dict[str, Any]) -> dict[str, Any] | None:
    """pydantic's schema as `{"type", "enum"?, "items"?}`, None when it needs more than that."""
    rest = dict(schema)
    if "anyOf" in rest:
        # `X | None`: pydantic says anyOf [X, null]; optionality comes from the default (a
        # parameter without one is required), so only X is described, as OpenAI expects.
        branches = [branch for branch in rest.pop("anyOf") if branch != _NULL]
        if len(branches) != 1 or rest:
            return None
        rest = dict(branches[0])
    if "const" in rest:  # Literal["x"]: pydantic writes const, the spec format has enum
        rest["enum"] = [rest.pop("const")]
    kind = rest.pop("type", None)
    if kind not in _TYPES:
        return None
    reduced: dict[str, Any] = {"type": kind}
    if "enum" in rest:
        reduced["enum"] = rest.pop("enum")
    if kind == "object":
        # dict[str, V]: the parameter is described as an open object, values unconstrained.
        rest.pop("additionalProperties", None)
    if kind == "array":
        if "prefixItems" in rest:
            # tuple[A, B]: a fixed-length array; elements are left unconstrained, as before.
            for key in ("prefixItems", "minItems", "maxItems"):
                rest.pop(key, None)
            reduced["items"] = {}
        else:
            items = rest.pop("items", {})
            reduced_items = _reduce(items) if items else {}
            if reduced_items is None:
                return None
            reduced["items"] = reduced_items
    return None if rest else reduced  # format, title, uniqueItems, $ref...: no faithful match


def json_type(annotation: Any) -> dict[str, Any] | None:
    """The JSON schema `{"type", "enum"?, "items"?}` of an annotation, None when JSON has no
    faithful equivalent (see the module docstring). Arrays always carry `items` (OpenAI
    rejects an array schema without it)."""
    try:
        schema = TypeAdapter(annotation).json_schema()
    except Exception:  # PydanticSchemaGenerationError, PydanticInvalidForJsonSchema, ...
        return None
    return _reduce(schema)


def validation_reason(exc: Exception) -> str:
    """A pydantic error's messages without pydantic's prefixes, for a one-line problem."""
    if isinstance(exc, ValidationError):
        return "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
    return str(exc)


def parameter_specs(
    function: Callable[..., Any], parsed: ParsedDocstring, where: str, problems: list[str]
) -> list[ParameterSpec]:
    """The ParameterSpecs of an instance method (without `self`), described by its Args.

    Problems (unannotated, unsupported or undocumented parameters, parameters that cannot be
    passed by name, Args entries naming no parameter, defaults that do not fit) are appended to
    `problems`, each starting with `where` and naming the parameter.
    """
    try:
        hints = typing.get_type_hints(function)
    except Exception as exc:
        problems.append(f"{where}: cannot resolve the type annotations ({exc})")
        return []
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        problems.append(f"{where}: a tool must be an instance method taking `self` first")
        return []
    documented = {entry.name: entry for entry in parsed.sections["args"]}
    specs: list[ParameterSpec] = []
    for parameter in parameters[1:]:
        name = parameter.name
        if parameter.kind not in _PASSABLE:
            problems.append(
                f"{where}: parameter {name!r} cannot be passed by name; agents send named "
                "JSON arguments only"
            )
            continue
        kind = None
        if name not in hints:
            problems.append(f"{where}: parameter {name!r} has no type annotation")
        else:
            kind = json_type(hints[name])
            if kind is None:
                problems.append(
                    f"{where}: parameter {name!r} is annotated {hints[name]!r}, which has no JSON "
                    "type (use str, int, float, bool, list[...], dict[...] or a Literal)"
                )
        entry = documented.get(name)
        if entry is None and parsed.readable:  # else the docstring's problem says it all
            problems.append(f"{where}: parameter {name!r} is not documented in the Args section")
        if kind is None or entry is None or not entry.description:
            continue
        required = parameter.default is inspect.Parameter.empty
        default = None if required else parameter.default
        json_kind: JSONType = kind["type"]
        try:
            json.dumps(default)
            specs.append(
                ParameterSpec(
                    name=name,
                    type=json_kind,
                    description=entry.description,
                    required=required,
                    default=copy.deepcopy(default),
                    enum=kind.get("enum"),
                    items=kind.get("items"),
                )
            )
        except (TypeError, ValueError, ValidationError) as exc:
            problems.append(f"{where}: parameter {name!r}: {validation_reason(exc)}")
    stale = [name for name in documented if name not in signature.parameters or name == "self"]
    if stale:
        problems.append(f"{where}: Args documents {', '.join(stale)}, not parameters of the tool")
    return specs
