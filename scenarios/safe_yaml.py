"""Reading scenario YAML with bounded work: no aliases, no duplicate keys, bounded depth.

PyYAML's safe loader still expands aliases lazily into shared objects, so a 4 KB "billion
laughs" file passes loading and then costs gigabytes the first time something walks or
serialises it (a proxy tool's canned result, the trajectory). A scenario file never needs
anchors, so they are refused outright; so are duplicate keys (PyYAML silently keeps the last)
and nesting deeper than any real scenario (deep nesting exhausts the recursion limit). YAML 1.1
numbers that do not mean what they look like are refused too: a leading-zero integer is octal
(``010`` is 8), colon-separated digits are base 60 (``1:30`` is 90) and ``yes``/``no``/``on``/
``off`` are booleans (only ``true``/``false`` may be). Dates and times stay
the text written (scenario values end up in JSON, which has no date type). The event pre-scan is
linear in the file's size. Errors are ``yaml.YAMLError`` subclasses with a
line and column, so callers report them like any other YAML error.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 64
MAX_BYTES = 8 << 20
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UnsafeYAMLError(yaml.MarkedYAMLError):
    """A construct scenario files may not use (aliases, duplicate keys, deep nesting, numbers
    YAML 1.1 reads otherwise than they look: octal ``010``, base-60 ``1:30``)."""


class _NoDuplicates(_Loader):  # type: ignore[misc,valid-type]
    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML itself reports it
                break
            if duplicate:
                raise UnsafeYAMLError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> Any:
        value = super().construct_yaml_int(node)
        text = str(node.value).replace("_", "")
        digits = text.lstrip("+-")
        if ":" in text:
            _misread(node, value, _BASE_60)
        elif len(digits) > 1 and digits[0] == "0" and digits.isdigit() and value != int(text):
            _misread(
                node,
                value,
                "a leading zero makes an integer octal in YAML 1.1; write "
                f"{int(text)} without the zero",
            )
        return value

    def construct_yaml_bool(self, node: Any) -> Any:
        value = super().construct_yaml_bool(node)
        if str(node.value).lower() not in ("true", "false"):
            _misread(
                node,
                value,
                f"YAML 1.1 reads {node.value} as a boolean, while an agent writes it as text; "
                f"write {str(value).lower()} for the boolean",
            )
        return value

    def construct_yaml_timestamp(self, node: Any, values: Any = None) -> Any:
        """A date or time is kept as the text written (``2024-09-30`` stays that string):
        everything a scenario holds is shown to agents and written to trajectories as JSON,
        which has no date type (a date object made every episode calling its getter error)."""
        return str(self.construct_scalar(node))

    def construct_yaml_float(self, node: Any) -> Any:
        value = super().construct_yaml_float(node)
        if ":" in str(node.value):
            _misread(node, value, _BASE_60)
        return value


_BASE_60 = "colon-separated digits are a base-60 number in YAML 1.1"


def _misread(node: Any, value: Any, why: str) -> None:
    raise UnsafeYAMLError(
        None,
        None,
        f"{node.value} reads as {value!r} ({why}); quote it ('{node.value}') if it is text",
        node.start_mark,
    )


_NoDuplicates.add_constructor("tag:yaml.org,2002:timestamp", _NoDuplicates.construct_yaml_timestamp)
_NoDuplicates.add_constructor("tag:yaml.org,2002:bool", _NoDuplicates.construct_yaml_bool)
_NoDuplicates.add_constructor("tag:yaml.org,2002:int", _NoDuplicates.construct_yaml_int)
_NoDuplicates.add_constructor("tag:yaml.org,2002:float", _NoDuplicates.construct_yaml_float)


def _scan(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise UnsafeYAMLError(
                None, None, "aliases (*name) are not allowed in scenario files", mark
            )
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise UnsafeYAMLError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def load_yaml(text: str) -> Any:
    """Parse one YAML document as plain data (safe loader), refusing aliases, duplicate keys,
    octal (``010``) and base-60 (``1:30``) numbers, nesting deeper than ``MAX_DEPTH`` and
    texts over ``MAX_BYTES``. Raises ``yaml.YAMLError``
    (``UnsafeYAMLError`` for the refused constructs) and ``ValueError`` for values Python
    refuses (e.g. integers of thousands of digits)."""
    if len(text) > MAX_BYTES:
        raise ValueError(f"the file is larger than {MAX_BYTES >> 20} MiB")
    _scan(text)
    return yaml.load(text, Loader=_NoDuplicates)  # a subclass of the safe loader
