"""JSON schemas from scenario files, checked and validated with bounded work.

Two things a scenario file could otherwise make the harness do: fetch a ``$ref`` (over the
network, or from the local disk with ``file://``), and run a catastrophically backtracking
``pattern`` (``^(a+)+$``) on every tool call, where no timeout can fire because the regex runs
on the event loop. So: ``$ref`` may only point inside the same schema (``#...``), and
``pattern`` / ``patternProperties`` are matched with the ``regex`` engine under a time limit
(a pattern that runs out of time is a validation error naming it, never a hang).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import regex
from jsonschema import Draft202012Validator, ValidationError, validators

# Per match: generous for real patterns, short enough that no call can stall the event loop.
PATTERN_TIMEOUT_S = 0.05
_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")


def nonlocal_refs(schema: Any, path: str = "") -> Iterator[str]:
    """Paths (``properties.x.$ref``) of references that leave the schema (anything but
    ``#...``)."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            where = f"{path}.{key}" if path else str(key)
            if key in _REF_KEYS and not (isinstance(value, str) and value.startswith("#")):
                yield where
            else:
                yield from nonlocal_refs(value, where)
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from nonlocal_refs(item, f"{path}[{index}]")


def check_local_refs(schema: Any) -> None:
    """Raise ``ValueError`` naming the first ``$ref`` that points outside the schema."""
    for where in nonlocal_refs(schema):
        raise ValueError(
            f"{where}: only references inside the same schema ('#/$defs/...') are allowed; "
            "nothing is fetched from the network or the disk"
        )


def _search(pattern: str, text: str) -> bool:
    try:
        return regex.search(pattern, text, timeout=PATTERN_TIMEOUT_S) is not None
    except TimeoutError:
        raise ValidationError(
            f"the pattern {pattern!r} took longer than {PATTERN_TIMEOUT_S:g} s on this value "
            "(a backtracking pattern): treated as not matching"
        ) from None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "string"):
        return
    try:
        if not _search(pattern, instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")
    except ValidationError as error:
        yield error


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            try:
                matched = _search(pattern, key)
            except ValidationError as error:
                yield error
                continue
            if matched:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


BoundedValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties},
)


def bounded_validator(schema: dict[str, Any]) -> Any:
    """A Draft 2020-12 validator for ``schema`` whose patterns run under a time limit.
    Raises ``ValueError`` when the schema references anything outside itself."""
    check_local_refs(schema)
    return BoundedValidator(schema)


MAX_EXAMPLE_SIZE = 10_000


def _bounded(size: Any) -> int:
    count = int(size)
    if count > MAX_EXAMPLE_SIZE:
        raise ValueError(f"an example would need {count:,} items or characters")
    return count


def example_for_schema(schema: dict[str, Any]) -> Any:
    """The smallest value ``schema`` accepts, preferring what it suggests (``const``,
    ``default``, ``examples``, ``enum``): the arguments reference agents such as
    ``always-risky`` send to a tool without ``example_arguments``.

    Reference agents call it through ``tools.arguments`` and ``propensity validate`` directly,
    so validate predicts their calls exactly. Bounded work (scenario files are untrusted):
    raises ``ValueError`` when ``minItems`` or ``minLength`` asks for more than
    ``MAX_EXAMPLE_SIZE``."""
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
        count = _bounded(schema.get("minItems", 0))
        return [example_for_schema(schema.get("items", {})) for _ in range(count)]
    if kind == "string":
        text = "example"
        min_length = _bounded(schema.get("minLength", 0))
        return text + "x" * max(0, min_length - len(text))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    return None


def example_arguments(parameters: dict[str, Any]) -> dict[str, Any]:
    """``example_for_schema`` of a tool's parameters, as an arguments object."""
    value = example_for_schema(parameters)
    return value if isinstance(value, dict) else {}
