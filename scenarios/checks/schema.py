"""What a tool's arguments schema says about its top-level arguments: which names it has, which
values it refuses, and the bounds no value can pass."""

from __future__ import annotations

import difflib
import importlib
import math
import re
from typing import Any

import regex
from jsonschema.exceptions import best_match

from scenarios.checks.base import ParametersOf
from scenarios.model import ToolSpec
from scenarios.schemas import bounded_validator

# Bounded work on untrusted files: $ref hops followed, time for one regex search.
_MAX_REF_HOPS = 16
_REGEX_TIMEOUT_S = 0.05


class _Parameters:
    """What a tool's arguments schema says about its top-level arguments (``properties`` of the
    schema and of its local ``$ref``/``allOf``/``anyOf``/``oneOf`` parts; ``patternProperties``).
    A schema that declares no properties and does not forbid others accepts any name."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator = bounded_validator(schema)
        self.properties: dict[str, Any] = {}
        self.patterns: list[str] = []
        self._collect(schema, 0)
        self.open = not self.properties and schema.get("additionalProperties") is not False

    @classmethod
    def of(cls, tool: ToolSpec, parameters_of: ParametersOf) -> _Parameters | None:
        schema = parameters_of(tool)
        if not isinstance(schema, dict):
            return None
        try:
            return cls(schema)
        except (ValueError, TypeError, RecursionError):
            return None  # the model (or the tool registry) reports a broken schema itself

    def _resolve(self, schema: Any) -> Any:
        for _ in range(_MAX_REF_HOPS):
            if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)):
                return schema
            target: Any = self.schema
            for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
                if not part:
                    continue
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and part in target:
                    target = target[part]
                elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                    target = target[int(part)]
                else:
                    return None
            schema = target
        return None

    def _collect(self, schema: Any, depth: int) -> None:
        schema = self._resolve(schema)
        if not isinstance(schema, dict) or depth > _MAX_REF_HOPS:
            return
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                self.properties.setdefault(name, sub)
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict):
            self.patterns += [p for p in patterns if isinstance(p, str)]
        for combinator in ("allOf", "anyOf", "oneOf"):
            parts = schema.get(combinator)
            if isinstance(parts, list):
                for part in parts:
                    self._collect(part, depth + 1)

    def has(self, name: str) -> bool:
        """Whether a call can carry argument ``name`` under this schema (an undecidable pattern
        counts as yes)."""
        if self.open or name in self.properties:
            return True
        for pattern in self.patterns:
            try:
                if regex.search(pattern, name, timeout=_REGEX_TIMEOUT_S) is not None:
                    return True
            except (TimeoutError, regex.error):
                return True
        return False

    def unknown(self, name: str, tool: str, consequence: str) -> str:
        """Why ``name`` is no argument of ``tool``, with a suggestion."""
        known = sorted(self.properties)
        folded = [k for k in known if k.lower() == name.lower()]
        close = folded or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        head = re.split(r"[./\[]", name, maxsplit=1)[0]
        if head != name and head in self.properties:
            hint = (
                f"; conditions compare top-level arguments only, so to test inside {head!r} "
                f"put the condition on {head!r} itself (e.g. {{equals: ...}} for the whole "
                "value)"
            )
        elif close:
            hint = f" (did you mean {close[0]!r}?)"
        else:
            hint = ""
        listed = ", ".join(known) if known else "none"
        return (
            f"{name!r} is not a parameter of {tool!r}{hint}; its parameters: {listed}. The "
            f"agent is never offered it, so {consequence}"
        )

    def _property(self, name: str) -> Any:
        return self._resolve(self.properties.get(name))

    def value_problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` is no valid argument ``name`` under the schema, or None if it is (or
        if the schema's verdict is not about that argument alone)."""
        errors = [
            error
            for error in self.validator.iter_errors({name: value})
            if list(error.absolute_path)[:1] == [name] and "took longer than" not in error.message
        ]
        return best_match(errors).message if errors else None

    def finite_values(self, name: str) -> list[Any] | None:
        """The values ``name`` may take when its schema lists them (``const``/``enum``)."""
        sub = self._property(name)
        if not isinstance(sub, dict):
            return None
        if "const" in sub:
            return [sub["const"]]
        enum = sub.get("enum")
        return list(enum) if isinstance(enum, list) else None

    def declared_types(self, name: str) -> set[str] | None:
        return _types(self._property(name))

    def bound_problem(self, name: str, op: str, operand: Any) -> str | None:
        """Why no value ``name``'s schema allows can meet ``{op: operand}``, from its bounds
        (``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` against
        ``gte``/``lte``; ``maxLength`` against the shortest text a ``contains`` or ``matches``
        needs; for an array, the ``items`` schema against a ``contains`` member), or None when
        it can or that is not decidable here."""
        sub = self._property(name)
        if not isinstance(sub, dict):
            return None
        types = _types(sub)
        if op in ("gte", "lte"):
            return _numeric_bound(sub, types, name, op, operand)
        if op in ("contains", "matches") and types == {"string"}:
            needed = len(operand) if op == "contains" else _shortest_match(operand)
            longest = _whole(sub.get("maxLength"))
            if longest is not None and needed is not None and needed > longest:
                what = "contain" if op == "contains" else "match it"
                return (
                    f"allows {name!r} at most {longest} characters (`maxLength`), and a text "
                    f"needs at least {needed} to {what}"
                )
            pattern = sub.get("pattern")
            if op == "contains" and isinstance(pattern, str):
                return _pattern_excludes(pattern, name, operand)
        if op == "contains" and types == {"array"}:
            return self._member_problem(sub, name, operand)
        return None

    def _member_problem(self, sub: dict[str, Any], name: str, member: str) -> str | None:
        """Why the array ``name`` can never hold the string ``member`` (``contains`` on a list
        is membership)."""
        if sub.get("maxItems") == 0:
            return f"allows {name!r} no items (`maxItems: 0`)"
        items = self._resolve(sub.get("items"))
        if not isinstance(items, dict):
            return None
        kinds = _types(items)
        if kinds is not None and "string" not in kinds:
            return f"allows {name!r} items of type {' or '.join(sorted(kinds))} only, not text"
        allowed = [items["const"]] if "const" in items else items.get("enum")
        if isinstance(allowed, list) and member not in allowed:
            return f"allows {name!r} items among {allowed[:8]!r} only"
        longest = _whole(items.get("maxLength"))
        if longest is not None and len(member) > longest:
            return f"allows {name!r} items of at most {longest} characters"
        pattern = items.get("pattern")
        if isinstance(pattern, str):
            try:
                if regex.search(pattern, member, timeout=_REGEX_TIMEOUT_S) is None:
                    return f"allows {name!r} items matching {pattern!r} only"
            except (TimeoutError, regex.error):
                return None
        return None


def _types(sub: Any) -> set[str] | None:
    kind = sub.get("type") if isinstance(sub, dict) else None
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list) and all(isinstance(k, str) for k in kind):
        return set(kind)
    return None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_bound(
    sub: dict[str, Any], types: set[str] | None, name: str, op: str, operand: Any
) -> str | None:
    """Why no number ``sub`` allows is ``>= operand`` (``gte``) or ``<= operand`` (``lte``)."""
    if not _is_number(operand) or (types is not None and not types & {"number", "integer"}):
        return None
    lows: list[tuple[float, bool, str]] = []
    highs: list[tuple[float, bool, str]] = []
    for key, strict, into in (
        ("minimum", False, lows),
        ("exclusiveMinimum", True, lows),
        ("maximum", False, highs),
        ("exclusiveMaximum", True, highs),
    ):
        if _is_number(sub.get(key)):
            into.append((sub[key], strict, key))
    if op == "gte":
        lows.append((operand, False, ""))
    else:
        highs.append((operand, False, ""))
    if not lows or not highs:
        return None
    low = max(lows, key=lambda bound: (bound[0], bound[1]))
    high = min(highs, key=lambda bound: (bound[0], not bound[1]))
    if types == {"integer"}:
        smallest = math.floor(low[0]) + 1 if low[1] else math.ceil(low[0])
        largest = math.ceil(high[0]) - 1 if high[1] else math.floor(high[0])
        empty = smallest > largest
    else:
        empty = low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1]))
    schema_side = high if op == "gte" else low
    if not empty or not schema_side[2]:
        return None
    return f"allows {name!r} only {_range_text(lows, highs)} (`{schema_side[2]}`)"


def _range_text(lows: list[tuple[float, bool, str]], highs: list[tuple[float, bool, str]]) -> str:
    parts = [f"{'above' if strict else 'from'} {value!r}" for value, strict, key in lows if key] + [
        f"{'below' if strict else 'up to'} {value!r}" for value, strict, key in highs if key
    ]
    return " and ".join(parts)


def _pattern_excludes(pattern: str, name: str, part: str) -> str | None:
    """Why no text the schema ``pattern`` allows contains ``part``, decided only for a pattern
    that spans the whole text with one repeated character class (``^[A-Z]+$``, ``^\\d{2,6}$``):
    every character of such a text is one the class allows, and there are at most as many as
    the repeat does. None when it could contain it or the pattern is of another shape."""
    try:
        parser: Any = importlib.import_module("re._parser")
        parsed = parser.parse(pattern)
        items = [(str(op), value) for op, value in parsed]
    except Exception:  # any pattern the parser cannot read is undecided
        return None
    if parsed.state.flags & re.MULTILINE or len(items) != 3:
        return None
    (start, begin), (repeat, body), (stop, end) = items
    if start != "AT" or str(begin) not in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
        return None
    if stop != "AT" or str(end) not in ("AT_END", "AT_END_STRING"):
        return None
    if repeat not in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") or len(body[2]) != 1:
        return None
    if str(body[2][0][0]) not in ("IN", "LITERAL", "NOT_LITERAL", "ANY"):
        return None
    low, high = int(body[0]), int(body[1])
    if len(part) > high:
        return f"allows {name!r} only texts matching {pattern!r}, of at most {high} characters"
    length = max(low, 1)
    if length > high:
        return None
    for char in dict.fromkeys(part):
        if char == "\n" and str(end) == "AT_END":
            return None  # `$` also matches before a final newline
        try:
            if regex.search(pattern, char * length, timeout=_REGEX_TIMEOUT_S) is None:
                return (
                    f"allows {name!r} only texts matching {pattern!r} (every character from "
                    f"one class), and {char!r} is not in it"
                )
        except (TimeoutError, regex.error):
            return None
    return None


def _shortest_match(pattern: str) -> int | None:
    """The fewest characters a text needs for ``pattern`` to be found in it (Python's own regex
    parser; None when it cannot read the pattern, e.g. syntax only the ``regex`` engine has)."""
    try:
        parser: Any = importlib.import_module("re._parser")
        low, _ = parser.parse(pattern).getwidth()
    except Exception:  # any pattern the parser cannot read is undecided
        return None
    return int(low)
