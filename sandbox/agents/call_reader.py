"""Recover tool calls that a model wrote as text instead of as native (OpenAI `tool_calls`) calls.

`read_tool_calls(text, offered)` returns the calls it could read (`RecoveredCall`, offered tool
names only) and the call-shaped fragments it could not (`UnparsedCall`), so that a call written
in an unexpected way is flagged instead of silently read as "no call". It never raises, and its
work is bounded (`max_chars`, and fixed caps on decode, repair, parse and scan work).

Rules:
- Explicit markers (tags, special tokens) that name a tool not offered, or hold text that cannot
  be read, give an `UnparsedCall`. Loose forms (bare or fenced JSON, pythonic, ReAct) naming an
  unknown tool are ignored: prose may hold arbitrary JSON. Prose that only mentions a tool (even
  as `name()` inside a sentence) is never a call and never unparsed.
- A call object is {"name"|"tool"|"tool_name"|"action"|"function": NAME, ARGS_KEY: ARGS} with
  ARGS_KEY one of "arguments", "parameters", "args", "input", "tool_input", "tool_args",
  "action_input"; or OpenAI's {"function": {"name": .., "arguments": ..}}; {"tool_calls": [..]}
  and {"function_call": {..}} wrappers are unwrapped. ARGS may be an object, a string holding a
  JSON object, or missing, null or "" (-> {}); anything else gives `arguments=None` with
  `raw_arguments` (the string as written, or the value's JSON text). In loose forms an echoed
  tool description (a "description" key, or a JSON schema as ARGS) is not a call.
- Near-JSON (comments, trailing commas, single quotes, True/None) is read with `json_repair`
  only after `json.loads` fails and only when the fragment is closed; then `repaired=True`. A
  fragment cut off by the end of the text is never completed: if its tool name can be read (the
  marker gives it, or a cleanly written "name" is the first key) it gives
  `RecoveredCall(arguments=None, raw_arguments=fragment)`, else `UnparsedCall("truncated")`.
- Pythonic calls are parsed with `ast` (never evaluated); values must be literals (JSON's
  true/false/null allowed); positional or non-literal arguments give `arguments=None`.
- Closed `<think>...</think>` reasoning blocks are skipped: a call drafted while reasoning is not
  an action (an unclosed block is read, since the model may never have left it).
- XML-style parameter values (Qwen3-Coder, GLM-4.5) that are JSON other than a string (30, true,
  [..]) are decoded, as those models write non-string values as JSON; others stay strings (no
  schema is known here, so a string "30" also becomes 30).
- Spans: calls written in one list, marker or fenced block share its span; bare JSON objects
  get one span each. The first (outermost) reader claims a span; nothing inside it is reported
  again. Markers are read first (in text order), then fenced blocks, pythonic, bare JSON.
"""

from __future__ import annotations

import ast
import bisect
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, NamedTuple

import json_repair


class CallFormat(StrEnum):
    """How a call was written. The values are stable strings recorded in trajectories."""

    TOOL_CALL_TAG = "tool_call_tag"  # Hermes, Qwen2.5, Qwen3: <tool_call>{json}</tool_call>
    XML_FUNCTION = "xml_function"  # Qwen3-Coder <function=N><parameter=K>V..; Llama 3.1 custom
    FENCED_JSON = "fenced_json"  # ```json / ```tool_call / ```tool_code / ``` block of JSON
    BARE_JSON = "bare_json"  # a call object in the reply (Llama 3.x JSON, xLAM, many others)
    MISTRAL = "mistral_tool_calls"  # Mistral [TOOL_CALLS] [{..}] (v3), [TOOL_CALLS]N[ARGS]{..}
    PYTHONIC = "pythonic"  # Llama 3.2/4 [f(x=1)], <|python_start|>, Gemma ```tool_code, f(x=1)
    PYTHON_TAG = "llama_python_tag"  # Llama 3.1 <|python_tag|>{json}; {json}, or N.call(..)
    DEEPSEEK = "deepseek"  # DeepSeek V3/R1/V3.1 <｜tool▁call▁begin｜>..<｜tool▁call▁end｜>
    SPECIAL_TOKEN_LIST = "special_token_list"  # Granite <|tool_call|>, Phi-4 functools, InternLM
    REACT = "react"  # LangChain ReAct: Action: N / Action Input: {json} or text
    GLM = "glm_tool_call"  # GLM-4.5/4.6 <tool_call>N<arg_key>k</arg_key><arg_value>v..
    KIMI = "kimi_k2"  # Kimi K2 <|tool_call_begin|>functions.N:0<|tool_call_argument_begin|>{..}
    HARMONY = "harmony"  # gpt-oss: to=functions.N <|constrain|>json<|message|>{json}<|call|>
    FUNCTIONARY = "functionary"  # Functionary v3: >>>N\n{json}


@dataclass(frozen=True)
class RecoveredCall:
    """A call to an offered tool. `arguments` is None (and `raw_arguments` holds the text as
    written) when the arguments could not be read as a JSON object; `start`/`end`: the span of
    the whole call in the text read; `repaired`: json_repair was needed."""

    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str | None
    format: CallFormat
    start: int
    end: int
    repaired: bool = False


@dataclass(frozen=True)
class UnparsedCall:
    """A call-shaped fragment that could not be read. `names`: offered tool names found in it
    (may be empty); `excerpt`: at most 300 characters of it; `reason`: short human text such as
    "not valid JSON", "truncated", "unknown tool 'x'", "not read: work limit reached"."""

    format: CallFormat
    names: tuple[str, ...]
    start: int
    end: int
    excerpt: str
    reason: str


@dataclass(frozen=True)
class ReadResult:
    """Calls and unreadable fragments, each in text order. `truncated`: the text was longer than
    `max_chars` and only its first `max_chars` characters were read."""

    calls: tuple[RecoveredCall, ...]
    unparsed: tuple[UnparsedCall, ...]
    truncated: bool = False


_EXCERPT = 300
_MAX_ATTEMPTS = 256  # JSON decodes and Python parses per text
_MAX_MARKERS = 256  # explicit markers handled per text
_MAX_REPAIRS, _REPAIR_MAX_CHARS, _REPAIR_BUDGET = 32, 50_000, 200_000  # json_repair: ~1 MB/s
_PARSE_MAX_CHARS = 100_000
_SCAN_BUDGET = 2_000_000  # characters walked by the bracket matcher
_READ = ("ok", "repaired")

_DECODER = json.JSONDecoder()
_WS = re.compile(r"\s*")
_SIG = re.compile(r"[\"'{}\[\]/]")
_STRING_END = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\]")}
_NAME_KEYS = ("name", "tool", "tool_name", "action", "function")
_ARG_KEYS = ("arguments", "parameters", "args", "input", "tool_input", "tool_args", "action_input")
_CALL_KEYS = {*_NAME_KEYS, *_ARG_KEYS, "id", "type", "call_id", "index"}
_MARKERS = re.compile(
    r"(?P<tool_call_tag><tool_call>)|(?P<xml_function><function=)|(?P<mistral>\[TOOL_CALLS\])"
    r"|(?P<python_tag><\|python_tag\|>)|(?P<pythonic><\|python_start\|>)"
    r"|(?P<deepseek><｜tool▁call▁begin｜>)|(?P<kimi><\|tool_call_begin\|>)"
    r"|(?P<harmony>\bto=functions\.)"
    r"|(?P<special_token_list><\|tool_call\|>|\bfunctools(?=\s{0,20}\[)|\[TOOL_REQUEST\]"
    r"|<functioncall>|<\|action_start\|><\|plugin\|>)"
    r"|(?P<functionary>^>>>(?=[A-Za-z_]))|(?P<react>^[ \t]*Action[ \t]*:)",
    re.MULTILINE,
)
_SPECIAL_ENDS = {
    "[TOOL_REQUEST]": "[END_TOOL_REQUEST]",  # LM Studio
    "<|action_start|><|plugin|>": "<|action_end|>",  # InternLM2
}
_DS_BEGIN, _DS_SEP, _DS_END = "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>"
_LEAD_NAME = re.compile(  # a cleanly written name as the first key (after an optional id/type)
    r"""\{\s{0,100}(?:["'](?:id|type)["']\s{0,20}:\s{0,20}["'][^"'\\\n]{0,100}["']\s{0,20},"""
    r"""\s{0,100}){0,2}(?:["'](?:name|tool|tool_name|action|function)["']\s{0,20}:\s{0,20}"""
    r"""|["']function["']\s{0,20}:\s{0,20}\{\s{0,100}["']name["']\s{0,20}:\s{0,20})"""
    r"""["']([^"'\\\n]{1,256})["'](?=\s{0,20}[,}]|\s{0,20}\Z)"""
)
_BARE = re.compile(r"""\{\s{0,100}(?:["'][^"'\n]{1,64}["']|[A-Za-z_]\w{0,63})\s{0,20}:""")  # {key:
_QUOTED_OBJECT = re.compile(r"'(\{[^']{0,50000}\})'")
_NAME_TOKEN = re.compile(r"[A-Za-z_][\w.\-]{0,255}")
_MISTRAL_NAME = re.compile(r"([^\s\[\]{}]{1,256})(?:\[CALL_ID\][^\[\s]{0,64})?\[ARGS\]")
_BUILTIN = re.compile(r"[A-Za-z_]\w{0,255}\.call\(")
_FUNCTIONARY = re.compile(r"([A-Za-z_][\w.\-]{0,255})[ \t]*\n")
_ACTION_INPUT = re.compile(r"\s*Action[ \t]*Input[ \t]*:")
_REACT_ENDS = ("\nObservation", "\nThought:", "\nFinal Answer:", "\nAction:")
_FENCE_OPEN = re.compile(r"^[ \t]{0,3}```[ \t]*([\w+.\-]*)[^\n]*$", re.MULTILINE)
_FENCE_CLOSE = re.compile(r"^[ \t]{0,3}```[ \t]*$", re.MULTILINE)
_JSON_LANGS = ("", "json", "json5", "jsonc", "tool_call", "tool_calls", "tool_code")
_PY_LANGS = ("py", "python", "python3")
_PY_LIST = re.compile(r"\[\s{0,100}([A-Za-z_]\w{0,255})\s{0,20}\(")
_PY_LINE = re.compile(r"^[ \t]*([A-Za-z_]\w{0,255})\([^\n]*\)[ \t]*$", re.MULTILINE)
_PY_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}

_Args = tuple[dict[str, Any] | None, str | None, bool]  # arguments, raw_arguments, repaired


class _Got(NamedTuple):
    status: str  # "ok" | "repaired" | "open" (not closed before stop) | "bad" | "limit"
    value: Any
    end: int


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


class _Reader:
    def __init__(self, text: str, offered: frozenset[str]) -> None:
        self.text, self.n, self.offered = text, len(text), offered
        self.calls: list[RecoveredCall] = []
        self.unparsed: list[UnparsedCall] = []
        self.attempts = self.repairs = self.repaired_chars = self.scanned = 0
        self.starts: list[int] = []  # claimed spans, sorted and disjoint
        self.ends: list[int] = []
        self.closes: dict[int, tuple[int, int]] = {}  # bracket -> (its end or -1, scanned until)
        self.finds: dict[str, tuple[int, int]] = {}
        names = "|".join(re.escape(n) for n in sorted(offered, key=len, reverse=True))
        self.mention = re.compile(rf"(?<![\w-])(?:{names})(?![\w-])")
        self.quoted = re.compile(rf"[\"'](?:{names})[\"']")

    def run(self) -> None:
        self.reasoning()
        self.markers()
        self.fences()
        self.pythonic()
        self.bare_json()

    # ---- passes -------------------------------------------------------------------------------

    def reasoning(self) -> None:
        """Closed ``<think>...</think>`` blocks (Qwen3, DeepSeek-R1, ...) are the model's
        reasoning, not its action: a call drafted there and then not written is not a call."""
        pos = 0
        while (start := self.text.find("<think>", pos)) >= 0:
            end = self.text.find("</think>", start)
            if end < 0:
                return
            self.claim(start, end + len("</think>"))
            pos = end + len("</think>")

    def markers(self) -> None:
        done = handled = 0
        for m in _MARKERS.finditer(self.text):
            start, kind = m.start(), m.lastgroup or ""
            if start < done or not self.free(start, start + 1):
                continue
            if handled == _MAX_MARKERS:
                reason = f"not read: more than {_MAX_MARKERS} call markers"
                self.fail(CallFormat[kind.upper()], start, self.n, reason)
                self.claim(start, self.n)
                return
            handled += 1
            calls, unparsed = len(self.calls), len(self.unparsed)
            end = getattr(self, "on_" + kind)(start, m.end(), m.group())
            if end is not None:
                done = max(end, m.end())
                self.claim(start, done)
                self.respan(calls, unparsed, done)

    def fences(self) -> None:
        text, pos = self.text, 0
        while (opening := _FENCE_OPEN.search(text, pos)) is not None:
            body = min(opening.end() + 1, self.n)
            closing = _FENCE_CLOSE.search(text, body)
            stop, end = (closing.start(), closing.end()) if closing else (self.n, self.n)
            start, lang, pos = opening.start(), opening.group(1).lower(), max(end, body)
            if not self.free(start, end):
                continue
            calls, unparsed, first = len(self.calls), len(self.unparsed), self.ws(body, stop)
            src = text[first:stop].rstrip()
            if lang in _JSON_LANGS and src[:1] in ("{", "["):
                self.values(CallFormat.FENCED_JSON, start, first, stop, loose=True)
            elif lang in ("", "tool_code") or (src[:1] + src[-1:] == "[]" and lang in _PY_LANGS):
                self.python(CallFormat.PYTHONIC, start, end, first, stop, loose=True)
            self.claim(start, end)
            self.respan(calls, unparsed, end, start)

    def pythonic(self) -> None:
        text, f, done = self.text, CallFormat.PYTHONIC, 0
        for m in _PY_LIST.finditer(text):
            start = m.start()
            if start < done or m.group(1) not in self.offered or not self.free(start, start + 1):
                continue
            close = self.match(start, self.n) if self.attempts < _MAX_ATTEMPTS else None
            if close is None or close < 0:
                reason = "truncated" if close is not None else "not read: work limit reached"
                self.fail(f, start, self.n, reason)
                self.claim(start, self.n)
                return
            if not self.free(start, close):
                continue
            parsed = self.python(f, start, close, start, close, loose=True, single=False)
            if parsed or (parsed is None and text[start:close].rstrip("] \t\n").endswith(")")):
                if not parsed:
                    self.fail(f, start, close, "not a valid Python call list")
                self.claim(start, close)
                done = close
        body = text.strip()
        start, end = self.n - len(text.lstrip()), len(text.rstrip())
        head = _NAME_TOKEN.match(body)
        if "\n" in body and head and body[head.end() :].startswith("(") and body.endswith(")"):
            if self.free(start, end) and self.python(f, start, end, start, end, loose=True):
                self.claim(start, end)  # the whole reply is one call written over several lines
        for m in _PY_LINE.finditer(text):
            start, end = m.start(), m.end()
            if m.group(1) in self.offered and self.free(start, end):
                if self.python(f, start, end, start, end, loose=True):
                    self.claim(start, end)

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
            if not self.mention.search(text, start, end):
                done = end  # no offered tool named in it: plain data, or prose
                continue
            if close is None or self.attempts >= _MAX_ATTEMPTS:
                self.fail(f, start, self.n, "not read: work limit reached")
                break
            got = self.decode(start, self.n, loose=True)
            if got.status in _READ:
                fixed = got.status == "repaired"
                if not self.free(start, got.end) or not self.read(got.value, f, start, got, fixed):
                    if not self.quoted.search(text, start, got.end):
                        done = got.end  # not a call, and no call inside it either
                    continue
            elif (name := self.lead_name(start)) in self.offered:
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

    # ---- explicit markers: each returns the end of the span it claims, or None -----------------

    def on_tool_call_tag(self, start: int, after: int, _: str) -> int | None:
        text, f = self.text, CallFormat.TOOL_CALL_TAG
        stop = min(self.upto("</tool_call>", after), self.upto("<tool_call>", after))
        pos = self.fence(self.ws(after, stop), stop)
        if pos < stop and text[pos] in "{[":
            return self.close_over(self.values(f, start, pos, stop), "</tool_call>", fence=True)
        if text.startswith("<function=", pos):
            return self.close_over(self.xml_function(start, pos, stop), "</tool_call>")
        head = _NAME_TOKEN.match(text, pos, stop)
        if head:  # GLM: NAME<arg_key>.., NAME\n{json}, or NAME alone
            nxt = self.ws(head.end(), stop)
            alone = nxt == stop and (stop < self.n or head.end() < stop)
            if alone or text.startswith(("<arg_key>", "{"), nxt):
                return self.close_over(self.glm(start, head.group(), nxt, stop), "</tool_call>")
        region = text[pos:stop].strip()
        if (head and head.end() == stop == self.n) or not region:
            reason = "truncated" if stop == self.n else "empty call"
        elif "{" in region or '"name"' in region or self.names_in(pos, stop):
            reason = "not valid JSON"
        else:
            return None  # the tag mentioned in prose
        self.fail(f, start, stop, reason)
        return self.close_over(stop, "</tool_call>")

    def on_xml_function(self, start: int, after: int, _: str) -> int | None:
        return self.xml_function(start, start, self.n)

    def on_mistral(self, start: int, after: int, _: str) -> int | None:
        text, f = self.text, CallFormat.MISTRAL
        stop = self.upto("[TOOL_CALLS]", after)
        pos = self.ws(after, stop)
        if pos < stop and text[pos] in "{[":
            return self.values(f, start, pos, stop)
        if m := _MISTRAL_NAME.match(text, pos, stop):
            return self.known(f, m.group(1), start, self.ws(m.end(), stop), stop)
        self.fail(f, start, stop, "truncated" if pos >= stop == self.n else "not a tool call")
        return stop

    def on_python_tag(self, start: int, after: int, _: str) -> int | None:
        text, f = self.text, CallFormat.PYTHON_TAG
        stop = min(self.upto(x, after) for x in ("<|eom_id|>", "<|eot_id|>", "<|python_tag|>"))
        pos = self.ws(after, stop)
        if pos < stop and text[pos] in "{[":
            return self.values(f, start, pos, stop, sep=";")
        if _BUILTIN.match(text, pos, stop):  # a Llama 3.1 built-in tool: brave_search.call(..)
            line = text.find("\n", pos, stop)
            line = stop if line < 0 else line
            if self.python(f, start, line, pos, line, attr_call=True):
                return line
        self.fail(f, start, stop, "truncated" if pos >= stop == self.n else "not a tool call")
        return stop

    def on_pythonic(self, start: int, after: int, _: str) -> int | None:
        stop = self.upto("<|python_end|>", after)
        end = min(stop + len("<|python_end|>"), self.n)
        if not self.python(CallFormat.PYTHONIC, start, end, after, stop):
            reason = "truncated" if self.ws(after, stop) >= stop == self.n else "not a tool call"
            self.fail(CallFormat.PYTHONIC, start, end, reason)
        return end

    def on_deepseek(self, start: int, after: int, _: str) -> int | None:
        text, f = self.text, CallFormat.DEEPSEEK
        stop = min(self.upto(_DS_END, after), self.upto(_DS_BEGIN, after))
        sep = text.find(_DS_SEP, after, min(stop, after + 300))
        if sep < 0:
            self.fail(f, start, stop, "truncated" if stop == self.n else "no tool name")
            return self.close_over(stop, _DS_END)
        head, pos = text[after:sep].strip(), sep + len(_DS_SEP)
        if head == "function":  # V3 / R1: function<sep>NAME\n```json\n{..}\n``` (V3.1: NAME<sep>{})
            line = text.find("\n", pos, stop)
            head, pos = text[pos : stop if line < 0 else line].strip(), stop if line < 0 else line
        pos = self.fence(self.ws(pos, stop), stop)
        return self.close_over(self.known(f, head, start, pos, stop), _DS_END, fence=True)

    def on_kimi(self, start: int, after: int, _: str) -> int | None:
        text, f, end = self.text, CallFormat.KIMI, "<|tool_call_end|>"
        stop = min(self.upto(end, after), self.upto("<|tool_call_begin|>", after))
        arg = text.find("<|tool_call_argument_begin|>", after, min(stop, after + 300))
        if arg < 0:
            self.fail(f, start, stop, "truncated" if stop == self.n else "no arguments marker")
            return self.close_over(stop, end)
        name = text[after:arg].strip().removeprefix("functions.")  # functions.NAME:INDEX
        base, colon, index = name.rpartition(":")
        name = base if colon and index.isdigit() else name
        pos = self.ws(arg + len("<|tool_call_argument_begin|>"), stop)
        return self.close_over(self.known(f, name, start, pos, stop), end)

    def on_harmony(self, start: int, after: int, _: str) -> int | None:
        text, f = self.text, CallFormat.HARMONY
        m = _NAME_TOKEN.match(text, after)
        name_end = m.end() if m else after
        brace = text.find("{", name_end, min(self.n, name_end + 200))
        if m is None or brace < 0 or "\n" in text[name_end:brace]:
            end = min(self.n, name_end + 200)
            self.fail(f, start, end, "truncated" if end == self.n else "no JSON arguments")
            return name_end
        stop = self.upto("<|call|>", brace)
        return self.close_over(self.known(f, m.group(), start, brace, stop), "<|call|>")

    def on_special_token_list(self, start: int, after: int, marker: str) -> int | None:
        f, closing = CallFormat.SPECIAL_TOKEN_LIST, _SPECIAL_ENDS.get(marker, "")
        stop = self.upto(closing, after) if closing else self.n
        pos = self.ws(after, stop)
        if pos < stop and self.text[pos] in "{[":
            return self.close_over(self.values(f, start, pos, stop), closing)
        end = stop if closing else min(stop, pos + _EXCERPT)
        self.fail(f, start, end, "truncated" if pos >= self.n else "not a tool call")
        return end

    def on_functionary(self, start: int, after: int, _: str) -> int | None:
        m = _FUNCTIONARY.match(self.text, after)
        pos = self.ws(m.end(), self.n) if m else self.n
        if m is None or m.group(1) == "all" or not self.text.startswith("{", pos):
            return None  # ">>>all" introduces plain text
        return self.known(CallFormat.FUNCTIONARY, m.group(1), start, pos, self.upto(">>>", pos))

    def on_react(self, start: int, after: int, _: str) -> int | None:
        text, f = self.text, CallFormat.REACT
        line = self.upto("\n", after)
        name = text[after:line].strip().strip("`'\"").strip()
        if name not in self.offered:
            return None
        m = _ACTION_INPUT.match(text, line)
        if m is None:
            self.call(name, ({}, None, False), f, start, line)
            return line
        stop = min(self.upto(end, m.end()) for end in _REACT_ENDS)
        pos = self.fence(self.ws(m.end(), stop), stop)
        if pos < stop and text[pos] == "{":
            return self.close_over(self.known(f, name, start, pos, stop, loose=True), "", True)
        self.call(name, self.arguments(True, text[m.end() : stop].strip()), f, start, stop)
        return stop

    # ---- readers ------------------------------------------------------------------------------

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

    def xml_function(self, start: int, pos: int, stop: int) -> int:
        """Qwen3-Coder <function=N><parameter=K>V</parameter></function>; Llama <function=N>{}."""
        text, f, at = self.text, CallFormat.XML_FUNCTION, pos + len("<function=")
        gt = text.find(">", at, min(stop, at + 257))
        if gt < 0 or "\n" in text[at:gt]:
            end = min(stop, at + _EXCERPT)
            self.fail(f, start, end, "truncated" if end == self.n else "unreadable function tag")
            return end
        name, body, close = text[at:gt].strip().strip("\"'"), self.ws(gt + 1, stop), -1
        if 0 <= (found := self.find("</function>", gt)) <= stop - len("</function>"):
            close = found
        if body < stop and text[body] == "{":
            end = self.known(f, name, start, body, close if close >= 0 else stop)
            return self.close_over(end, "</function>")
        if close < 0:
            got = _Got("open" if stop == self.n else "bad", None, stop)
            self.broken(f, start, gt + 1, got, False, name)
            return stop
        args: dict[str, Any] = {}
        i = gt
        while 0 <= (p := self.find("<parameter=", i)) < close:
            key_end = text.find(">", p, min(close, p + 268))
            if key_end < 0:
                break
            value_end, later = self.find("</parameter>", key_end), self.find("<parameter=", p + 1)
            if not 0 <= value_end < close or 0 <= later < value_end:  # closing tag left out
                value_end = i = later if 0 <= later < close else close
            else:
                i = value_end + len("</parameter>")
            value = text[key_end + 1 : value_end]  # one newline each side is layout
            value = value[1:] if value.startswith("\n") else value
            value = value[:-1] if value.endswith("\n") else value
            args[text[p + len("<parameter=") : key_end].strip()] = _xml_value(value)
        self.named(f, name, (args, None, False), start, close + len("</function>"))
        return close + len("</function>")

    def glm(self, start: int, name: str, pos: int, stop: int) -> int:
        """GLM-4.5: N<arg_key>k</arg_key><arg_value>v</arg_value>...; GLM-4: N\\n{json}."""
        text, f, first = self.text, CallFormat.GLM, pos
        if pos < stop and text[pos] == "{":
            return self.known(f, name, start, pos, stop)
        args: dict[str, Any] = {}
        while text.startswith("<arg_key>", pos):
            key_end = text.find("</arg_key>", pos, stop)
            at = self.ws(key_end + len("</arg_key>"), stop) if key_end >= 0 else stop
            value_end = text.find("</arg_value>", at, stop)
            if key_end < 0 or value_end < 0 or not text.startswith("<arg_value>", at):
                break
            args[text[pos + 9 : key_end].strip()] = _xml_value(text[at + 11 : value_end])
            pos = self.ws(value_end + len("</arg_value>"), stop)
        if pos < stop or stop == self.n:  # junk, or the text ended inside the call
            got = _Got("open" if stop == self.n else "bad", None, stop)
            self.broken(f, start, first, got, False, name)
        else:
            self.named(f, name, (args, None, False), start, stop)
        return stop

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
        """Read `[f(a=1), g()]` (or, if `single`, one `f(a=1)`) with `ast`, never evaluating it.
        True: calls read; False: Python but not such a call list; None: not Python."""
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
            func = node.func if isinstance(node, ast.Call) else None
            if attr_call and isinstance(func, ast.Attribute) and func.attr == "call":
                func = func.value
            if not isinstance(node, ast.Call) or not isinstance(func, ast.Name):
                return False
            if any(isinstance(a, ast.Constant) and a.value is ... for a in ast.walk(node)):
                return False  # name(...) describes a call, it does not make one
            found.append((func.id, node))
        if not found or (loose and any(name not in self.offered for name, _ in found)):
            return False
        for name, node in found:
            self.named(f, name, _python_arguments(node, src), start, end)
        return True

    # ---- JSON -----------------------------------------------------------------------------------

    def decode(self, pos: int, stop: int, loose: bool = False) -> _Got:
        """Strict JSON at pos; else json_repair on the closed fragment that ends before stop
        (in loose forms only if the fragment mentions an offered tool)."""
        if self.attempts >= _MAX_ATTEMPTS:
            return _Got("limit", None, stop)
        self.attempts += 1
        try:
            value, end = _DECODER.raw_decode(self.text, pos)
            return _Got("ok", value, end)
        except (ValueError, RecursionError):
            pass
        close = self.match(pos, stop)
        if close is None or close < 0:
            return _Got("limit" if close is None else "open", None, stop)
        if loose and not self.mention.search(self.text, pos, close):
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
            value = json.loads(fragment)
        except (ValueError, RecursionError):
            try:
                value = json_repair.loads(fragment, skip_json_loads=True)
            except Exception:
                return None
        return value if isinstance(value, (dict, list)) and value else None

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
        if name is not None and (name in self.offered or not loose):
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
            shape = _shape(item, loose) if isinstance(item, dict) else None
            if shape is not None and (shape[0] in self.offered or not loose):
                self.named(f, shape[0], self.arguments(shape[1], shape[2], fixed), start, got.end)
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

    # ---- helpers ------------------------------------------------------------------------------

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
        if name in self.offered:
            self.call(name, args, f, start, end)
        elif not loose:
            self.fail(f, start, end, f"unknown tool {name[:100]!r}")

    def call(self, name: str, args: _Args, f: CallFormat, start: int, end: int) -> None:
        arguments, raw, fixed = args
        raw = None if arguments is not None else raw or ""
        self.calls.append(RecoveredCall(name, arguments, raw, f, start, end, fixed))

    def fail(self, f: CallFormat, start: int, end: int, reason: str) -> bool:
        last = self.unparsed[-1] if self.unparsed else None
        if last is not None and (last.start, last.end, last.reason) == (start, end, reason):
            return False
        excerpt = self.text[start:end][:_EXCERPT]
        self.unparsed.append(
            UnparsedCall(f, self.names_in(start, end), start, end, excerpt, reason)
        )
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

    def find(self, sub: str, pos: int) -> int:
        """str.find memoised per substring, so many markers still cost one pass over the text."""
        since, found = self.finds.get(sub, (self.n + 1, -1))
        if since <= pos and (found < 0 or found >= pos):
            return found
        found = self.text.find(sub, pos)
        self.finds[sub] = (pos, found)
        return found

    def upto(self, sub: str, pos: int) -> int:
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

    def close_over(self, end: int, marker: str, fence: bool = False) -> int:
        """Extend a span over white space, an optional closing ``` and the closing marker."""
        pos = self.ws(end, self.n)
        if fence and self.text.startswith("```", pos):
            pos = self.ws(pos + 3, self.n)
            end = end if marker else pos
        if marker and self.text.startswith(marker, pos):
            return pos + len(marker)
        return end


def _bracket_end(
    text: str, pos: int, stop: int, closes: dict[int, tuple[int, int]]
) -> tuple[int, list[int]]:
    """End of the bracket opened at pos (-1 if not closed before stop) and the brackets still
    open at stop. Skips "..." and '...' strings and // and /* */ comments. Records in `closes`
    where each bracket passed on the way closes."""
    stack: list[int] = []
    i = pos
    while (m := _SIG.search(text, i, stop)) is not None:
        j, ch = m.start(), m.group()
        i = j + 1
        if ch in "\"'":
            pattern = _STRING_END[ch]
            while (e := pattern.search(text, i, stop)) is not None and e.group() == "\\":
                i = e.end() + 1
            if e is None:
                break
            i = e.end()
        elif ch == "/" and text.startswith(("//", "/*"), j):
            k = text.find("\n" if text[j + 1] == "/" else "*/", j + 2, stop)
            i = stop if k < 0 else k + 1
        elif ch in "{[":
            stack.append(j)
        elif stack:
            closes[stack.pop()] = (j + 1, j + 1)
            if not stack:
                return j + 1, []
    return -1, stack


def _skip_commas(text: str, pos: int, stop: int) -> int:
    while pos < stop and (text[pos].isspace() or text[pos] == ","):
        pos += 1
    return pos


def _call_objects(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("tool_calls"), list) and value["tool_calls"]:
            return list(value["tool_calls"])
        if isinstance(value.get("function_call"), dict):
            return [value["function_call"]]
    return [value]


def _shape(obj: dict[str, Any], loose: bool) -> tuple[str, bool, Any] | None:
    """(name, arguments present, arguments) of a call object, or None if it is not one."""
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    if name is None or (loose and "description" in obj):  # an echoed tool description
        return None
    if loose and not any(k in obj for k in _ARG_KEYS) and not obj.keys() <= _CALL_KEYS:
        return None  # {"name": tool, "status": "ok"} is a record about a tool, not a call
    for key in _ARG_KEYS:
        if key in obj:
            args = obj[key]
            schema = (
                isinstance(args, dict) and args.get("type") == "object" and "properties" in args
            )
            return None if loose and schema else (name, True, args)
    return name, False, None


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


def _unquote_object(m: re.Match[str]) -> str:
    try:
        json.loads(m.group(1))
    except (ValueError, RecursionError):
        return m.group()
    return m.group(1)


def _xml_value(value: str) -> Any:
    """A parameter value written XML-style: JSON other than a string is decoded; anything else
    is the string as written."""
    try:
        parsed = json.loads(value, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return value
    return value if isinstance(parsed, str) else parsed


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: keep the text


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "<unprintable>"
