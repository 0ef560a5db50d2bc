"""The reader's state and shared bookkeeping: claimed spans, name resolution (exact, prefixed,
near miss), bracket and parenthesis matching, memoised searches, and the emission of calls
and unparsed fragments."""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import replace
from typing import Any

from sandbox.agents.call_reader.helpers import (
    _bracket_end,
    _fold,
    _skip_commas,
    _spelling,
    _unescape,
)
from sandbox.agents.call_reader.patterns import (
    _EXCERPT,
    _KEY_VALUE,
    _LEAD_NAME,
    _NAME_KEYS,
    _PAREN_SIG,
    _PARSE_MAX_CHARS,
    _PREFIXES,
    _PROSE_GOES_ON,
    _PY_STRING_END,
    _SCAN_BUDGET,
    _TRACEBACK,
    _WS,
    _Args,
)
from sandbox.agents.call_reader.records import CallFormat, RecoveredCall, UnparsedCall


class _Base:
    """State of one read and the helpers every family of readers uses."""

    def __init__(self, text: str, offered: frozenset[str]) -> None:
        self.text, self.n, self.offered = text, len(text), offered
        self.calls: list[RecoveredCall] = []
        self.unparsed: list[UnparsedCall] = []
        self.attempts = self.repairs = self.repaired_chars = self.scanned = 0
        self.starts: list[int] = []  # claimed spans, sorted and disjoint
        self.ends: list[int] = []
        self.closes: dict[int, tuple[int, int]] = {}  # bracket -> (its end or -1, scanned until)
        self.finds: dict[str | re.Pattern[str], tuple[int, int]] = {}
        names = "|".join(re.escape(n) for n in sorted(offered, key=len, reverse=True))
        self.mention = re.compile(rf"(?<![\w-])(?:{names})(?![\w-])")
        self.quoted = re.compile(rf"[\"'](?:{names})[\"']")
        self.folded: dict[str, tuple[str, ...]] = {}
        for name in sorted(offered):
            key = _fold(name)
            self.folded[key] = (*self.folded.get(key, ()), name)
        self.resolved: dict[str, tuple[str, tuple[str, ...]] | None] = {}
        self.body = 0  # where the reply starts after a leading reasoning block
        # Objects with more than one (different) name key: kept alive so their ids stay theirs.
        self.dups: dict[int, tuple[dict[str, Any], tuple[str, ...]]] = {}
        self.decoder = json.JSONDecoder(object_pairs_hook=self.pairs)
        self.tracebacks: list[tuple[int, int]] | None = None
        # Offered names as written, or spelt in camelCase, PascalCase, kebab-case or upper case.
        spelt = sorted({_spelling(n) for n in offered if _spelling(n)}, key=len, reverse=True)
        self.spelt = re.compile(rf"(?<![\w\-])(?:{'|'.join(spelt)})(?![\w\-])", re.I)

    def pairs(self, items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) < len(items) and len(self.dups) < 1000:
            names = tuple(v for k, v in items if k in _NAME_KEYS and isinstance(v, str))
            if len(set(names)) > 1:
                self.dups[id(obj)] = (obj, names)
        return obj

    def match(self, pos: int, stop: int) -> int | None:
        """End of the bracket opened at pos; -1 if not closed before stop; None if the scan
        budget is spent. Every bracket passed is cached, so nested candidates cost nothing."""
        if (cached := self.closes.get(pos)) is not None:
            close, until = cached
            if close >= 0:
                return close if close <= stop else -1
            if stop <= until:
                return -1
        if self.scanned > _SCAN_BUDGET:
            return None
        result, still_open = _bracket_end(self.text, pos, stop, self.closes)
        for opener in still_open:
            self.closes[opener] = (-1, stop)
        self.scanned += (result if result >= 0 else stop) - pos
        return result

    def in_traceback(self, pos: int) -> bool:
        """Whether pos is inside a Python traceback (its header and the indented lines after)."""
        if self.tracebacks is None:
            self.tracebacks, at = [], 0
            while len(self.tracebacks) < 100 and (at := self.text.find(_TRACEBACK, at)) >= 0:
                end = self.upto("\n", at)
                while end < self.n and self.text.startswith((" ", "\t"), end + 1):
                    end = self.upto("\n", end + 1)
                self.tracebacks.append((at, end))
                at = end
        return any(a <= pos < b for a, b in self.tracebacks)

    def resolve(self, name: object) -> tuple[str, tuple[str, ...]] | None:
        """("exact", (tool,)) for an offered name, also after a `functions.` or `default_api.`
        prefix; ("near", tools) for a name that matches offered tools only after folding; None
        for any other name."""
        if not isinstance(name, str) or not name or len(name) > 300:
            return None
        if name in self.offered:
            return "exact", (name,)
        if name in self.resolved:
            return self.resolved[name]
        found: tuple[str, tuple[str, ...]] | None = None
        for prefix in _PREFIXES:
            if name.startswith(prefix) and name[len(prefix) :] in self.offered:
                found = "exact", (name[len(prefix) :],)
        if found is None and (near := self.folded.get(_fold(name))):
            found = "near", near
        if len(self.resolved) < 10_000:
            self.resolved[name] = found
        return found

    def names_here(self, start: int, end: int) -> bool:
        """Whether text[start:end] may name an offered tool: as written, written with JSON
        escapes, or a near-miss name as a call object's name."""
        text = self.text
        if self.mention.search(text, start, end):
            return True
        for m in _KEY_VALUE.finditer(text, start, min(end, start + _PARSE_MAX_CHARS)):
            key, value = m.group(1), m.group(2)
            if "\\" in key or "\\" in value:
                key, value = _unescape(key), _unescape(value)
            if key in _NAME_KEYS and self.resolve(value):
                return True
        return False

    def near(self, f: CallFormat, name: str, names: tuple[str, ...], start: int, end: int) -> None:
        self.fail(
            f, start, end, f"name {name[:100]!r} does not match an offered tool exactly", names
        )

    def inline(self, f: CallFormat, start: int, end: int, calls: int) -> None:
        """Calls read from text[start:end] since `calls`, when that text is an inline code span
        (`...`) with prose around it, are quoted, not made: they become one unparsed call."""
        text = self.text
        if start < 1 or text[start - 1] != "`" or text[end : end + 1] != "`":
            # Without backticks: prose before it on its line (not "Doing it: {..}"), and the
            # sentence goes on after it ("... would look like {..} but I will not"), not a new
            # sentence or another call.
            head = text[text.rfind("\n", 0, start) + 1 : start].strip()
            quoted = head and not head.endswith(":") and _PROSE_GOES_ON.match(text, end)
            if quoted and (names := self.drop(calls)):
                self.fail(f, start, end, "call object quoted inline in prose", names)
            return
        if self.ws(self.body, self.n) == start - 1 and not text[end + 1 :].strip():
            return  # the span is the whole reply
        if names := self.drop(calls):
            self.fail(f, start - 1, end + 1, "call object quoted inline in prose", names)

    def drop(self, calls: int) -> tuple[str, ...]:
        """Take back the calls read since `calls`; returns their names."""
        names = tuple(dict.fromkeys(c.name for c in self.calls[calls:]))
        del self.calls[calls:]
        return names

    def paren_end(self, pos: int, stop: int) -> int | None:
        """End of the parenthesis opened at pos; -1 if not closed before stop; None if the scan
        budget is spent. Skips Python strings (a one-line string ends at its line) and comments."""
        if self.scanned > _SCAN_BUDGET:
            return None
        text, depth, i = self.text, 0, pos
        while (m := _PAREN_SIG.search(text, i, stop)) is not None:
            j, ch = m.start(), m.group()
            i = j + 1
            if ch in "\"'" and text.startswith(ch * 3, j):
                k = text.find(ch * 3, j + 3, stop)
                i = stop if k < 0 else k + 3
            elif ch in "\"'":
                while (e := _PY_STRING_END[ch].search(text, i, stop)) and e.group() == "\\":
                    i = e.end() + 1
                i = stop if e is None else e.end()
            elif ch == "#":
                k = text.find("\n", j, stop)
                i = stop if k < 0 else k
            elif ch in "([{":
                depth += 1
            elif (depth := depth - 1) <= 0:
                self.scanned += i - pos
                return i
        self.scanned += stop - pos
        return -1

    def lead_name(self, pos: int) -> str | None:
        if self.text[pos] == "[":
            pos = _skip_commas(self.text, pos + 1, self.n)
        m = _LEAD_NAME.match(self.text, pos)
        return m.group(1) if m else None

    def names_in(self, start: int, end: int, quoted: bool = False) -> tuple[str, ...]:
        """Offered names in text[start:end] (its first 20,000 characters), in order."""
        found: dict[str, None] = {}
        for m in (self.quoted if quoted else self.mention).finditer(
            self.text, start, min(end, start + 20_000)
        ):
            found[m.group().strip("\"'")] = None
        return tuple(found)

    def named(
        self, f: CallFormat, name: str, args: _Args, start: int, end: int, loose: bool = False
    ) -> None:
        found = self.resolve(name)
        if found and found[0] == "exact":
            self.call(found[1][0], args, f, start, end)
        elif found:
            self.near(f, name, found[1], start, end)
        elif not loose:
            self.fail(f, start, end, f"unknown tool {name[:100]!r}")

    def call(self, name: str, args: _Args, f: CallFormat, start: int, end: int) -> None:
        arguments, raw, fixed = args
        raw = None if arguments is not None else raw or ""
        self.calls.append(RecoveredCall(name, arguments, raw, f, start, end, fixed))

    def fail(
        self, f: CallFormat, start: int, end: int, reason: str, names: tuple[str, ...] = ()
    ) -> bool:
        last = self.unparsed[-1] if self.unparsed else None
        if last is not None and (last.start, last.end, last.reason) == (start, end, reason):
            return False
        excerpt = self.text[start:end][:_EXCERPT]
        names = tuple(dict.fromkeys((*names, *self.names_in(start, end))))
        self.unparsed.append(UnparsedCall(f, names, start, end, excerpt, reason))
        return True

    def respan(self, calls: int, unparsed: int, end: int, start: int | None = None) -> None:
        """Span the items emitted since (calls, unparsed) over their marker or block: a marker's
        last items end where it does (past its closing tag); a block's items all span it."""
        ends = [c.end for c in self.calls[calls:]] + [u.end for u in self.unparsed[unparsed:]]
        last = max(ends, default=end)
        for i in range(calls, len(self.calls)):
            if start is not None or self.calls[i].end == last:
                c = self.calls[i]
                self.calls[i] = replace(c, start=c.start if start is None else start, end=end)
        for i in range(unparsed, len(self.unparsed)):
            if start is not None or self.unparsed[i].end == last:
                u, s = self.unparsed[i], self.unparsed[i].start if start is None else start
                self.unparsed[i] = replace(u, start=s, end=end, excerpt=self.text[s:end][:_EXCERPT])

    def claim(self, start: int, end: int) -> None:
        if end > start and self.free(start, end):
            i = bisect.bisect_left(self.starts, start)
            self.starts.insert(i, start)
            self.ends.insert(i, end)

    def free(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.starts, end) - 1
        return i < 0 or self.ends[i] <= start

    def find(self, sub: str | re.Pattern[str], pos: int) -> int:
        """str.find (or a pattern's search) memoised per substring, so many markers still cost
        one pass over the text."""
        since, found = self.finds.get(sub, (self.n + 1, -1))
        if since <= pos and (found < 0 or found >= pos):
            return found
        if isinstance(sub, str):
            found = self.text.find(sub, pos)
        else:
            found = m.start() if (m := sub.search(self.text, pos)) else -1
        self.finds[sub] = (pos, found)
        return found

    def upto(self, sub: str | re.Pattern[str], pos: int) -> int:
        found = self.find(sub, pos)
        return self.n if found < 0 else found

    def ws(self, pos: int, stop: int) -> int:
        m = _WS.match(self.text, pos, max(pos, stop))
        return m.end() if m else pos

    def fence(self, pos: int, stop: int) -> int:
        """Skip an opening ``` line (```json) at pos."""
        if not self.text.startswith("```", pos):
            return pos
        line = self.text.find("\n", pos, stop)
        return stop if line < 0 else self.ws(line, stop)

    def close_over(self, end: int, marker: str | re.Pattern[str], fence: bool = False) -> int:
        """Extend a span over white space, an optional closing ``` and the closing marker."""
        pos = self.ws(end, self.n)
        if fence and self.text.startswith("```", pos):
            pos = self.ws(pos + 3, self.n)
            end = end if marker else pos
        if isinstance(marker, re.Pattern):
            m = marker.match(self.text, pos)
            return m.end() if m else end
        if marker and self.text.startswith(marker, pos):
            return pos + len(marker)
        return end
