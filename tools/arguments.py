"""Minimal valid arguments synthesised from a JSON schema.

Reference agents and scripted test models must make *valid* calls to tools they know nothing
about beyond the function-calling schema; this gives them the smallest arguments that pass
validation, preferring values the schema itself suggests (examples, defaults, enums, consts).
"""

from __future__ import annotations

from typing import Any


def example_for_schema(schema: dict[str, Any]) -> Any:
    for hint in ("const", "default"):
        if hint in schema:
            return schema[hint]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return example_for_schema(schema[combinator][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        required = schema.get("required", [])
        return {name: example_for_schema(properties.get(name, {})) for name in required}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [example_for_schema(schema.get("items", {})) for _ in range(count)]
    if kind == "string":
        text = "example"
        min_length = int(schema.get("minLength", 0))
        return text + "x" * max(0, min_length - len(text))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    return None


def example_arguments(parameters: dict[str, Any]) -> dict[str, Any]:
    value = example_for_schema(parameters)
    return value if isinstance(value, dict) else {}
