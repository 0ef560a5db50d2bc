"""The entry point `read_tool_calls` and the reader that runs the passes in order: a leading
reasoning block, explicit markers, fenced blocks, pythonic calls, bare JSON, the safety net."""

from __future__ import annotations

import json
import re
from collections.abc import Collection

import yaml

from sandbox.agents.call_reader.json_calls import _READ
from sandbox.agents.call_reader.markers import _MarkerReading
from sandbox.agents.call_reader.net import _SafetyNet
from sandbox.agents.call_reader.patterns import _MAX_ATTEMPTS, _Got
from sandbox.agents.call_reader.pythonic import _PY_LIST
from sandbox.agents.call_reader.records import CallFormat, ReadResult, UnparsedCall

_BARE = re.compile(  # {key:
    r"""\{\s{0,100}(?:["'“‘][^"'“”‘’\n]{1,64}["'”’]|[A-Za-z_]\w{0,63})\s{0,20}:"""
)
_FENCE_OPEN = re.compile(r"^[ \t]{0,3}```[ \t]*([\w+.\-]*)[^\n]*$", re.MULTILINE)
_FENCE_CLOSE = re.compile(r"^[ \t]{0,3}```[ \t]*$", re.MULTILINE)
_JSON_LANGS = ("", "json", "json5", "jsonc", "tool_call", "tool_calls", "tool_code")
_PY_LANGS = ("py", "python", "python3")
_THINK_CLOSE = re.compile(r"</think>(?=\s|<|\Z)")
_YAML_LANGS = ("yaml", "yml")
_YAML_MAX_CHARS = 20_000


def read_tool_calls(
    text: str | None, offered: Collection[str], *, max_chars: int = 200_000
) -> ReadResult:
    """The tool calls written as text in `text` (a model reply) for the `offered` tool names.

    Returns calls and unreadable call-shaped fragments in text order; see the module docstring.
    Never raises: on an internal error it returns what was read so far plus an `UnparsedCall`
    whose reason starts with "reader error".
    """
    if not text or not isinstance(text, str):
        return ReadResult((), ())
    truncated = len(text) > max_chars
    text = text[: max(max_chars, 0)]
    try:
        offered = [offered] if isinstance(offered, str) else offered  # one name, not its letters
        names = frozenset(name for name in offered if isinstance(name, str) and name)
    except Exception:
        names = frozenset()
    if not names or not text:
        return ReadResult((), (), truncated)
    reader = _Reader(text, names)
    try:
        reader.run()
    except Exception as exc:  # never raise into the harness
        reason = f"reader error: {type(exc).__name__}"
        reader.unparsed.append(UnparsedCall(CallFormat.BARE_JSON, (), 0, len(text), "", reason))
    calls = tuple(sorted(reader.calls, key=lambda c: c.start))
    return ReadResult(calls, tuple(sorted(reader.unparsed, key=lambda u: u.start)), truncated)


class _Reader(_MarkerReading, _SafetyNet):
    """One read of one text: the passes in order (see the package docstring)."""

    def run(self) -> None:
        self.reasoning()
        self.markers()
        self.fences()
        self.pythonic()
        self.bare_json()
        self.net()

    def reasoning(self) -> None:
        """A reasoning block at the start of the reply (Qwen3, DeepSeek-R1, ...) is the model's
        reasoning, not its action: a call drafted there and then not written is not a call. Only
        a leading block is skipped, so a `<think>` later in the text cannot hide a call."""
        text, first = self.text, self.ws(0, self.n)
        if text.startswith("<think>", first):
            end = text.find("</think>", first)
        else:  # Qwen3: the template opened the block, the reply only closes it
            end = text.find("</think>")
            if not _THINK_CLOSE.match(text, end) or text.find("<think>", 0, end) >= 0:
                end = -1  # "</think>" quoted in a string, or a <think> ... </think> later on
        if end >= 0:
            self.body = end + len("</think>")
            self.claim(0, self.body)

    def fences(self) -> None:
        text, pos = self.text, 0
        while (opening := _FENCE_OPEN.search(text, pos)) is not None:
            body = min(opening.end() + 1, self.n)
            closing = _FENCE_CLOSE.search(text, body)
            stop, end = (closing.start(), closing.end()) if closing else (self.n, self.n)
            start, lang, pos = opening.start(), opening.group(1).lower(), max(end, body)
            if not self.free(start, end):
                continue
            if self.attempts >= _MAX_ATTEMPTS:  # nothing more can be parsed: flag the rest once
                if self.names_here(start, self.n):
                    self.fail(CallFormat.FENCED_JSON, start, self.n, "not read: work limit reached")
                    self.claim(start, self.n)
                return
            calls, unparsed, first = len(self.calls), len(self.unparsed), self.ws(body, stop)
            while text.startswith(("//", "#"), first):  # leading comment lines
                line = text.find("\n", first, stop)
                first = stop if line < 0 else self.ws(line, stop)
            src = text[first:stop].rstrip()
            if lang in _JSON_LANGS and src[:1] in ("{", "[") and not _PY_LIST.match(text, first):
                self.values(CallFormat.FENCED_JSON, start, first, stop, loose=True)
            elif lang in ("", "tool_code", *_PY_LANGS):
                self.code(start, end, body, stop, closing is None)
            elif lang in _YAML_LANGS:
                self.yaml_block(start, end, body, stop)
            self.claim(start, end)
            self.respan(calls, unparsed, end, start)

    def bare_json(self) -> None:
        text, f, done = self.text, CallFormat.BARE_JSON, 0
        calls, unparsed = len(self.calls), len(self.unparsed)
        pending: list[tuple[int, _Got]] = []  # unreadable, nameless: flagged if nothing inside is
        for m in _BARE.finditer(text):
            start = m.start()
            if start < done or not self.free(start, start + 1):
                continue
            close = self.match(start, self.n)
            end = self.n if close is None or close < 0 else close
            if not self.names_here(start, end):
                done = end  # no offered tool named in it: plain data, or prose
                continue
            if close is None or self.attempts >= _MAX_ATTEMPTS:
                self.fail(f, start, self.n, "not read: work limit reached")
                break
            got = self.decode(start, self.n, loose=True)
            if got.status in _READ:
                fixed, before = got.status == "repaired", len(self.calls)
                if not self.free(start, got.end) or not self.read(got.value, f, start, got, fixed):
                    if not self.quoted.search(text, start, got.end):
                        done = got.end  # not a call, and no call inside it either
                    continue
                self.inline(f, start, got.end, before)
            elif self.resolve(name := self.lead_name(start)):
                self.broken(f, start, start, got, True, name)
            else:
                if self.names_in(start, got.end, quoted=True):
                    pending.append((start, got))
                continue  # a stray brace in prose must not hide the calls after it
            self.claim(start, got.end)
            done = got.end
        found = [c.start for c in self.calls[calls:]] + [u.start for u in self.unparsed[unparsed:]]
        for start, got in pending:
            if self.free(start, got.end) and not any(start <= x < got.end for x in found):
                self.broken(f, start, start, got, True)
                self.claim(start, got.end)

    def yaml_block(self, start: int, end: int, body: int, stop: int) -> None:
        """A ```yaml block holding a call (name: N / arguments: ..) or a list of calls."""
        f = CallFormat.YAML
        if not self.names_here(body, stop):
            return
        if stop - body > _YAML_MAX_CHARS or self.attempts >= _MAX_ATTEMPTS:
            self.fail(f, start, end, "not read: work limit reached")
            return
        self.attempts += 1
        try:
            value = json.loads(json.dumps(yaml.safe_load(self.text[body:stop]), default=str))
        except Exception:
            self.fail(f, start, end, "not valid YAML")
            return
        if not self.read(value, f, start, _Got("ok", value, end), False):
            self.fail(f, start, end, "tool named in a YAML block that is not a call object")
