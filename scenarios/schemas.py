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
