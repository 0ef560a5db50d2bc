"""Pythonic calls, parsed with `ast` and never evaluated: `[f(a=1), g()]` lists, call lines, and
fenced blocks of Python or Gemma `tool_code`."""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any, NamedTuple

from sandbox.agents.call_reader.base import _Base
from sandbox.agents.call_reader.patterns import (
    _ID,
    _MAX_ATTEMPTS,
    _MAX_MARKERS,
    _PARSE_MAX_CHARS,
    _Args,
)
from sandbox.agents.call_reader.records import CallFormat

_PY_LIST = re.compile(rf"\[\s{{0,100}}({_ID})\s{{0,20}}\(")
_PY_LINE = re.compile(  # a call line, maybe decorated: >>> f(, - f(, await f(, x = f(, print(f(
    r"^[ \t]*(?P<pre>>>>[ \t]*|[-*+•][ \t]+|\d{1,3}[.)][ \t]+|await[ \t]+"
    rf"|[A-Za-z_]\w{{0,63}}[ \t]*=[ \t]*)?(?P<tick>`?)(?P<print>print\()?(?P<name>{_ID})\(",
    re.MULTILINE,
)
_LINE_TAIL = re.compile(r"[ \t]*\)?[ \t]*;?[ \t]*`?[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
_PY_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}


class _Line(NamedTuple):
    start: int  # the line(s), without surrounding white space
    end: int
    name_at: int  # the call itself is text[name_at:close]
    close: int
    name: str  # as written
    found: tuple[str, tuple[str, ...]]  # Reader.resolve(name)
    decorated: bool  # >>>, -, await, x =, print(, backticks
    truncated: bool
    empty: bool  # no arguments


class _PythonReading(_Base):
    """Reading pythonic calls: lists, call lines and code blocks."""

    def pythonic(self) -> None:
        text, f, done = self.text, CallFormat.PYTHONIC, 0
        spans: list[tuple[int, int]] = []  # lists read here: a reply of only these is calls
        for m in _PY_LIST.finditer(text):
            start, found = m.start(), self.resolve(m.group(1))
            if start < done or not found or not self.free(start, start + 1):
                continue
            close = self.match(start, self.n) if self.attempts < _MAX_ATTEMPTS else None
            if close is None or close < 0:
                reason = "truncated" if close is not None else "not read: work limit reached"
                self.fail(f, start, self.n, reason)
                self.claim(start, self.n)
                return
            if not self.free(start, close):
                continue
            calls = len(self.calls)
            parsed = self.python(f, start, close, start, close, loose=True, single=False)
            if parsed or (parsed is None and text[start:close].rstrip("] \t\n").endswith(")")):
                if not parsed and found[0] == "exact":
                    self.fail(f, start, close, "not a valid Python call list", found[1])
                elif not parsed:
                    self.near(f, m.group(1), found[1], start, close)
                self.inline(f, start, close, calls)
                self.claim(start, close)
                spans.append((start, close))
                done = close
        lines: list[_Line] = []
        done = 0
        for m in _PY_LINE.finditer(text):
            if m.start() >= done and (line := self.call_line(m)) is not None:
                lines.append(line)
                done = line.end
        pos, whole = self.body, bool(lines)
        for s, e in sorted([*spans, *((line.start, line.end) for line in lines)]):
            whole = whole and not text[pos:s].strip()
            pos = max(pos, e)
        whole = whole and not text[pos:].strip()
        for i, line in enumerate(lines):
            if i == _MAX_MARKERS or (whole and self.attempts >= _MAX_ATTEMPTS):
                reason = "not read: work limit reached"
                if i == _MAX_MARKERS:
                    reason = f"not read: more than {_MAX_MARKERS} call lines"
                names = tuple(dict.fromkeys(n for x in lines[i:] for n in x.found[1]))
                self.fail(f, line.start, lines[-1].end, reason, names)
                self.claim(line.start, lines[-1].end)
                return
            self.line(line, whole)

    def call_line(self, m: re.Match[str]) -> _Line | None:
        """A line (or lines) holding one call to a tool, found at a _PY_LINE match."""
        text, found = self.text, self.resolve(m.group("name"))
        if not found or not self.free(m.start(), m.end()):
            return None
        start, opening = m.start() + len(m.group()) - len(m.group().lstrip(" \t")), m.end() - 1
        close, name = self.paren_end(opening, self.upto("\n", opening)), m.group("name")
        if close == -1:  # written over several lines, or cut off
            limit = min(self.n, opening + _PARSE_MAX_CHARS)
            close = self.paren_end(opening, limit)
            if close == -1 and limit == self.n:
                end = len(text.rstrip())
                if not self.free(start, end):
                    return None
                return _Line(start, end, m.start("name"), end, name, found, True, True, False)
        if close is None or close < 0:  # out of budget, or longer than any call we parse
            end = self.n if close is None else min(self.n, opening + _PARSE_MAX_CHARS)
            if self.free(start, end):
                self.fail(CallFormat.PYTHONIC, start, end, "not read: work limit reached", found[1])
                self.claim(start, end)
            return None
        if not (tail := _LINE_TAIL.match(text, close)):
            return None  # the line goes on: a call inside a sentence
        end = close + len(text[close : tail.end()].rstrip())
        if not self.free(start, end):
            return None
        decorated = any(m.group(g) for g in ("pre", "tick", "print"))
        args = text[opening + 1 : close - 1].strip()
        if args in ("...", "…"):
            return None  # f(...) describes a call, it does not make one
        return _Line(start, end, m.start("name"), close, name, found, decorated, False, not args)

    def line(self, line: _Line, whole: bool) -> None:
        """Read a call line if the whole reply is such lines, else flag it."""
        f, (kind, names) = CallFormat.PYTHONIC, line.found
        start, end = line.start, line.end
        if line.truncated:
            if whole and kind == "exact":
                self.call(names[0], (None, self.text[line.name_at : end], False), f, start, end)
            else:
                self.fail(f, start, end, "truncated", names)
        elif whole:
            if kind != "exact":
                self.near(f, line.name, names, start, end)
            elif (
                parsed := self.python(f, start, end, line.name_at, line.close, loose=True)
            ) is None:
                self.fail(f, start, end, "not a valid Python call", names)
            elif not parsed:
                return
        elif line.decorated and line.empty:
            return  # "- f()" in a list of tools
        elif self.in_traceback(start):
            return  # a traceback quotes the line that failed; it is not a call
        else:
            self.fail(f, start, end, "call written as a line inside prose", names)
        self.claim(start, end)

    def code(self, start: int, end: int, first: int, stop: int, unclosed: bool) -> None:
        """A fenced block of Python or Gemma tool_code: only calls to offered tools -> read; a
        tool call among other code -> flagged; code calling no offered tool -> nothing."""
        f, text = CallFormat.PYTHONIC, self.text
        src = textwrap.dedent(text[first:stop])  # first: the start of the block's first line
        if not src.strip() or self.python(f, start, end, first, stop, loose=True):
            return
        tree: ast.Module | None = None
        limited = len(src) > _PARSE_MAX_CHARS or self.attempts >= _MAX_ATTEMPTS
        if not limited:
            self.attempts += 1
            try:
                tree = ast.parse(src)
            except Exception:  # SyntaxError, ValueError (NUL), RecursionError, MemoryError
                tree = None
        if tree is None:  # not Python: flag it if a line in it calls a tool
            lines = [m for m in _PY_LINE.finditer(text, first, stop) if self.resolve(m["name"])]
            if lines:
                found = [(m["name"], self.resolve(m["name"]) or ("", ())) for m in lines]
                near = next((name for name, (kind, _) in found if kind != "exact"), None)
                reason = "tool call written inside code"
                if limited:
                    reason = "not read: work limit reached"
                elif near is not None:
                    reason = f"name {near[:100]!r} does not match an offered tool exactly"
                elif unclosed:
                    reason = "truncated"
                names = tuple(dict.fromkeys(n for _, (_, ns) in found for n in ns))
                self.fail(f, start, end, reason, names)
            return
        tools: dict[str, None] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (got := self.resolve(_written(node, src))):
                tools.update(dict.fromkeys(got[1]))
            elif isinstance(node, ast.Call) and _written(node, src) == "getattr":
                for arg in node.args[1:2]:  # getattr(tools, "N")(..)
                    if isinstance(arg, ast.Constant) and (got := self.resolve(arg.value)):
                        tools.update(dict.fromkeys(got[1]))
        if not tools:
            return
        items: list[ast.Call] = []
        for stmt in tree.body:
            calls = _statement_calls(stmt)
            if calls is None or not all(self.resolve(_written(c, src)) for c in calls):
                self.fail(f, start, end, "tool call written inside code", tuple(tools))
                return
            items.extend(calls)
        if any(isinstance(a, ast.Constant) and a.value is ... for a in ast.walk(tree)):
            return  # signatures
        self.emit_python(f, start, end, [(_written(c, src), c) for c in items], src)

    def python(
        self,
        f: CallFormat,
        start: int,
        end: int,
        src_start: int,
        src_stop: int,
        loose: bool = False,
        single: bool = True,
        attr_call: bool = False,
    ) -> bool | None:
        """Read `[f(a=1), g()]` (or, if `single`, one `f(a=1)` or `print(f(a=1))`) with `ast`,
        never evaluating it. True: calls read; False: Python but not such a call list; None:
        not Python."""
        src = self.text[src_start:src_stop].strip()
        if not src or len(src) > _PARSE_MAX_CHARS or self.attempts >= _MAX_ATTEMPTS:
            return None
        self.attempts += 1
        try:
            body = ast.parse(src, mode="eval").body
        except Exception:  # SyntaxError, ValueError (NUL), RecursionError, MemoryError
            return None
        nodes = body.elts if isinstance(body, ast.List) else [body] if single else []
        found: list[tuple[str, ast.Call]] = []
        for node in nodes:
            node = _unprint(node)
            if not isinstance(node, ast.Call):
                return False
            name = _written(node, src, attr_call)
            if not name:
                return False
            if any(isinstance(a, ast.Constant) and a.value is ... for a in ast.walk(node)):
                return False  # name(...) describes a call, it does not make one
            found.append((name, node))
        if not found or (loose and not all(self.resolve(name) for name, _ in found)):
            return False
        self.emit_python(f, start, end, found, src)
        return True

    def emit_python(
        self, f: CallFormat, start: int, end: int, found: list[tuple[str, ast.Call]], src: str
    ) -> None:
        for name, node in found:
            self.named(f, name, _python_arguments(node, src), start, end)


def _unprint(node: ast.expr) -> ast.expr:
    """`print(f(x))` (Gemini's tool_code) -> `f(x)`."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.Call)
    ):
        return node.args[0]
    return node


def _written(node: ast.Call, src: str, attr_call: bool = False) -> str:
    """The called name as written in src (`f`, `default_api.f`), or "" for other callees. Read
    from the source because `ast` NFKC-normalises names (a fullwidth `ｆ` would become `f`)."""
    func = node.func
    if attr_call and isinstance(func, ast.Attribute) and func.attr == "call":
        func = func.value
    if isinstance(func, ast.Name) or (
        isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
    ):
        return ast.get_source_segment(src, func) or ""
    return ""


def _statement_calls(stmt: ast.stmt) -> list[ast.Call] | None:
    """The calls a statement of a code block makes if it is only calls: `f(..)`,
    `print(f(..))` or `[f(..), g(..)]`; None if it is any other code."""
    if not isinstance(stmt, ast.Expr):
        return None
    items = stmt.value.elts if isinstance(stmt.value, ast.List) else [stmt.value]
    calls = [c for item in items if isinstance(c := _unprint(item), ast.Call)]
    return calls if calls and len(calls) == len(items) else None


def _python_arguments(node: ast.Call, src: str) -> _Args:
    segment = ast.get_source_segment(src, node) or ""
    raw = segment[segment.find("(") + 1 : segment.rfind(")")].strip()
    if node.args or any(k.arg is None for k in node.keywords):
        return None, raw, False
    try:
        return {str(k.arg): _literal(k.value) for k in node.keywords}, None, False
    except (ValueError, RecursionError):
        return None, raw, False


def _literal(node: ast.expr) -> Any:
    """A JSON-like Python literal (true/false/null also accepted); ValueError otherwise."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, type(None))):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise ValueError("dict keys must be strings")
            out[key.value] = _literal(value)
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Name) and node.id.lower() in _PY_NAMES:
        return _PY_NAMES[node.id.lower()]
    raise ValueError("not a literal")
