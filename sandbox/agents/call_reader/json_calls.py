"""JSON call values: decoding (strict, then `json_repair` on closed fragments), call objects
and their wrappers, arguments as written, and what to report for a fragment that does not
decode."""

from __future__ import annotations

import json
import re
from typing import Any

import json_repair

from sandbox.agents.call_reader.base import _Base
from sandbox.agents.call_reader.helpers import _bracket_end, _skip_commas
from sandbox.agents.call_reader.patterns import _MAX_ATTEMPTS, _NAME_KEYS, _Args, _Got
from sandbox.agents.call_reader.records import CallFormat

_MAX_REPAIRS, _REPAIR_MAX_CHARS, _REPAIR_BUDGET = 32, 50_000, 200_000  # json_repair: ~1 MB/s
_READ = ("ok", "repaired")
_ARG_KEYS = (
    "arguments",
    "parameters",
    "args",
    "input",
    "inputs",
    "params",
    "kwargs",
    "argument",
    "tool_input",
    "tool_args",
    "tool_arguments",
    "tool_params",
    "action_input",
    "function_args",
)
_CALL_KEYS = {*_NAME_KEYS, *_ARG_KEYS, "id", "type", "call_id", "index"}
_SCHEMA_KEYS = {"type", "properties", "required", "additionalProperties", "description", "title"}
_SCHEMA_KEYS |= {"$schema", "$defs", "definitions"}
_QUOTED_OBJECT = re.compile(r"'(\{[^']{0,50000}\})'")


class _JsonReading(_Base):
    """Reading JSON call values, for the explicit markers and the loose forms alike."""

    def values(
        self, f: CallFormat, start: int, pos: int, stop: int, loose: bool = False, sep: str = ""
    ) -> int:
        """Read consecutive JSON call values at pos; the first call's span starts at `start`."""
        text, first, last = self.text, start, pos
        while pos < stop and text[pos] in "{[":
            got = self.decode(pos, stop, loose)
            if got.status not in _READ:
                self.broken(f, first, pos, got, loose)
                return got.end
            self.read(got.value, f, first, got, got.status == "repaired", loose)
            last = got.end
            pos = self.ws(last, self.n)
            if sep and text.startswith(sep, pos):
                pos = self.ws(pos + len(sep), self.n)
            first = pos
        return last

    def known(
        self, f: CallFormat, name: str, start: int, pos: int, stop: int, loose: bool = False
    ) -> int:
        """Read the arguments at pos of a call whose name the marker gave."""
        if pos < stop and self.text[pos] in "{[":
            got = self.decode(pos, stop, loose)
            if got.status not in _READ:
                self.broken(f, start, pos, got, loose, name)
            else:
                args = self.arguments(True, got.value, got.status == "repaired")
                self.named(f, name, args, start, got.end, loose)
            return got.end
        if pos >= stop == self.n:
            self.broken(f, start, pos, _Got("open", None, stop), loose, name)
        else:
            raw = self.text[pos:stop].strip()
            self.named(f, name, self.arguments(bool(raw), raw), start, stop, loose)
        return stop

    def decode(self, pos: int, stop: int, loose: bool = False) -> _Got:
        """Strict JSON at pos; else json_repair on the closed fragment that ends before stop
        (in loose forms only if the fragment mentions an offered tool)."""
        if self.attempts >= _MAX_ATTEMPTS:
            return _Got("limit", None, stop)
        self.attempts += 1
        try:
            value, end = self.decoder.raw_decode(self.text, pos)
            return _Got("ok", value, end)
        except (ValueError, RecursionError):
            pass
        close = self.match(pos, stop)
        if close is None or close < 0:
            return _Got("limit" if close is None else "open", None, stop)
        if loose and not self.names_here(pos, close):
            return _Got("bad", None, close)
        value = self.repair(self.text[pos:close])
        return _Got("bad", None, close) if value is None else _Got("repaired", value, close)

    def repair(self, fragment: str) -> Any:
        size = len(fragment)
        if self.repairs >= _MAX_REPAIRS or size > _REPAIR_MAX_CHARS:
            return None
        if self.repaired_chars + size > _REPAIR_BUDGET:
            return None
        self.repairs, self.repaired_chars = self.repairs + 1, self.repaired_chars + size
        fragment = _QUOTED_OBJECT.sub(_unquote_object, fragment)  # Glaive: "arguments": '{..}'
        try:
            value = self.decoder.decode(fragment)
        except (ValueError, RecursionError):
            try:
                value = json_repair.loads(fragment, skip_json_loads=True)
            except Exception:
                return None
        return value if isinstance(value, (dict, list)) and value else None

    def broken(
        self, f: CallFormat, start: int, pos: int, got: _Got, loose: bool, name: str | None = None
    ) -> bool:
        """Report text[pos:got.end], which did not decode. Returns whether anything was."""
        text, end = self.text, got.end
        if got.status == "open" and name is None and text[pos : pos + 1] == "[":
            q, found = pos + 1, False  # a list cut off: keep its complete items
            while (q := _skip_commas(text, q, end)) < end and text[q] == "{":
                item = self.decode(q, end, loose)
                if item.status not in _READ:
                    return self.broken(f, q if found else start, q, item, loose) or found
                fixed = item.status == "repaired"
                found = self.read(item.value, f, start, item, fixed, loose) or found
                q = item.end
            if found:
                return True
        if name is None and pos < self.n:
            name = self.lead_name(pos)
        if name is not None and (self.resolve(name) or not loose):
            self.named(f, name, (None, text[pos:end].strip() or text[pos:end], False), start, end)
            return True
        if loose and not self.names_in(pos, end, quoted=True):
            return False
        reason = {
            "open": "truncated" if end >= self.n else "unclosed JSON",
            "bad": "not valid JSON",
        }
        return self.fail(f, start, end, reason.get(got.status, "not read: work limit reached"))

    def read(
        self, value: Any, f: CallFormat, start: int, got: _Got, fixed: bool, loose: bool = True
    ) -> bool:
        """Emit the calls a decoded JSON value holds. Returns whether anything was emitted."""
        emitted = False
        for item in _call_objects(value):
            if isinstance(item, dict) and (dup := self.dup_names(item)) is not None:
                if dup or not loose:
                    reason = "ambiguous call object: more than one tool name"
                    emitted = self.fail(f, start, got.end, reason, dup) or emitted
                continue
            shape = _shape(item, loose) if isinstance(item, dict) else None
            if shape is not None and (self.resolve(shape[0]) or not loose):
                name, present, args, obj = shape
                if not present and not loose and obj.keys() - _CALL_KEYS - {"description"}:
                    arguments: _Args = (None, _dumps(obj), fixed)  # arguments under an odd key
                else:
                    arguments = self.arguments(present, args, fixed)
                self.named(f, name, arguments, start, got.end)
                emitted = True
            elif not loose:
                emitted = self.fail(f, start, got.end, "not a tool call object") or emitted
        return emitted

    def arguments(self, present: bool, value: Any, fixed: bool = False) -> _Args:
        """(arguments, raw_arguments, repaired) for an arguments value as written."""
        if not present or value is None or (isinstance(value, str) and not value.strip()):
            return {}, None, fixed
        if isinstance(value, dict):
            return value, None, fixed
        if not isinstance(value, str):
            return None, _dumps(value), fixed
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            text, parsed = value.strip(), None
            if text.startswith("{") and len(text) <= _REPAIR_MAX_CHARS:
                if _bracket_end(text, 0, len(text), {})[0] == len(text):  # closed, not cut off
                    parsed = self.repair(text)
                    fixed = fixed or isinstance(parsed, dict)
        return (parsed, None, fixed) if isinstance(parsed, dict) else (None, value, fixed)

    def dup_names(self, obj: dict[str, Any]) -> tuple[str, ...] | None:
        """None if the call object names one tool; else the offered tools among its names."""
        for item in (obj, obj.get("function")):
            if isinstance(item, dict) and id(item) in self.dups:
                found = (self.resolve(n) for n in self.dups[id(item)][1])
                return tuple(dict.fromkeys(n for got in found if got for n in got[1]))
        return None


def _call_objects(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in ("tool_calls", "tool_uses"):
            if isinstance(value.get(key), list) and value[key]:
                return list(value[key])
        if isinstance(value.get("function_call"), dict):
            return [value["function_call"]]
        if not any(k in value for k in _NAME_KEYS):  # {"response": {"tool_calls": [..]}}
            for inner in list(value.values())[:20]:
                if isinstance(inner, dict) and any(
                    isinstance(inner.get(k), list) and inner[k] for k in ("tool_calls", "tool_uses")
                ):
                    return _call_objects(inner)
    return [value]


def _shape(obj: dict[str, Any], loose: bool) -> tuple[str, bool, Any, dict[str, Any]] | None:
    """(name, arguments present, arguments, the call object) of a call object, or None if it is
    not one."""
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    if name is None:
        return None
    key = next((k for k in _ARG_KEYS if k in obj), None)
    if loose and key is None and ("description" in obj or not obj.keys() <= _CALL_KEYS):
        return None  # an echoed tool description, or {"name": tool, "status": "ok"}: a record
    if loose and key is not None and _schema_like(obj[key]):
        return None  # an echoed tool description: its parameters are a JSON schema
    return name, key is not None, obj[key] if key is not None else None, obj


def _schema_like(args: Any) -> bool:
    """A JSON schema of a tool's parameters, not the values of a call's arguments."""
    if not isinstance(args, dict) or not args.keys() <= _SCHEMA_KEYS:
        return False
    props = args.get("properties")
    if props is not None and not (
        isinstance(props, dict) and all(isinstance(v, dict) for v in props.values())
    ):
        return False
    return args.get("type") == "object" or props is not None


def _unquote_object(m: re.Match[str]) -> str:
    try:
        json.loads(m.group(1))
    except (ValueError, RecursionError):
        return m.group()
    return m.group(1)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "<unprintable>"
