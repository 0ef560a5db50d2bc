"""Explicit call markers (tags and special tokens of the model families named in `CallFormat`):
one `on_<kind>` handler per alternative of `_MARKERS`."""

from __future__ import annotations

import ast
import re
from typing import Any

from sandbox.agents.call_reader.helpers import _xml_value
from sandbox.agents.call_reader.json_calls import _JsonReading
from sandbox.agents.call_reader.patterns import (
    _EXCERPT,
    _ID,
    _MAX_ATTEMPTS,
    _MAX_MARKERS,
    _PARSE_MAX_CHARS,
    _Args,
    _Got,
)
from sandbox.agents.call_reader.pythonic import _python_arguments, _PythonReading
from sandbox.agents.call_reader.records import CallFormat

_MARKERS = re.compile(
    r"(?P<tool_call_tag><tool_call(?:[ \t]+name[ \t]*=[ \t]*[\"'][^\"'\n<>]{0,256}[\"'])?[ \t]*>)"
    r"|(?P<xml_function><function=)|(?P<mistral>\[TOOL_CALLS\])"
    r"|(?P<python_tag><\|python_tag\|>)|(?P<pythonic><\|python_start\|>)"
    r"|(?P<deepseek>(?!<\|tool_call_begin\|>)<[|｜]tool[▁_ ]call[▁_ ]begin[|｜]>)"
    r"|(?P<kimi><\|tool_call_begin\|>)"
    r"|(?P<harmony>\bto=(?:functions\.|(?=[^\W\d])))"
    r"|(?P<special_token_list><\|tool_call\|>|\bfunctools(?=\s{0,20}\[)|\[TOOL_REQUEST\]"
    r"|<functioncall>|<\|action_start\|><\|plugin\|>)"
    r"|(?P<xml_invoke><(?:[A-Za-z][\w\-]{0,30}:)?invoke[ \t]+name[ \t]*=)"
    r"|(?P<function_name><function[ \t]+name[ \t]*=)"
    r"|(?P<functionary>>>>(?=[A-Za-z_]))|(?P<react>^[ \t]*(?i:action)[ \t]*:)"
    r"|(?P<tool_label>^[ \t]*(?i:tool)[ \t]*:)",
    re.MULTILINE,
)
_SPECIAL_ENDS = {
    "[TOOL_REQUEST]": "[END_TOOL_REQUEST]",  # LM Studio
    "<|action_start|><|plugin|>": "<|action_end|>",  # InternLM2
}
_DS_BEGIN = re.compile(r"<[|｜]tool[▁_ ]call[▁_ ]begin[|｜]>")  # DeepSeek, and ASCII lookalikes
_DS_SEP = re.compile(r"<[|｜]tool[▁_ ]sep[|｜]>")
_DS_END = re.compile(r"<[|｜]tool[▁_ ]call[▁_ ]end[|｜]>")
_NAME_TOKEN = re.compile(r"[A-Za-z_][\w.\-]{0,255}")
_MISTRAL_NAME = re.compile(r"([^\s\[\]{}]{1,256})(?:\[CALL_ID\][^\[\s]{0,64})?\[ARGS\]")
_BUILTIN = re.compile(r"[A-Za-z_]\w{0,255}\.call\(")
_FUNCTIONARY = re.compile(r"([A-Za-z_][\w.\-]{0,255})[ \t]*\n")
_ACTION_INPUT = re.compile(r"\s*(?i:action)[ \t]*(?i:input)[ \t]*:")
_REACT_ENDS = ("\nObservation", "\nThought:", "\nFinal Answer:", "\nAction:")
_ID_RE = re.compile(_ID)
_ATTR_VALUE = re.compile(r"""[ \t]*(["'])([^"'\n<>]{0,256})\1[ \t]*>""")
_INVOKE = re.compile(r"<(?:[A-Za-z][\w\-]{0,30}:)?invoke[ \t]+name[ \t]*=")
_INVOKE_WRAPPER_END = re.compile(r"</(?:[A-Za-z][\w\-]{0,30}:)?(?:function_calls|tool_call)>")
_INVOKE_PARAM = re.compile(r"""<(?P<ns>[A-Za-z][\w\-]{0,30}:)?parameter[ \t]+name[ \t]*=""")
_ARGS_LABEL = re.compile(r"\s*(?i:arguments|args|input|parameters|action[ \t]*input)[ \t]*:")


class _MarkerReading(_JsonReading, _PythonReading):
    """Explicit markers: each `on_<kind>` handler returns the end of the span it claims, or None."""

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

    def on_tool_call_tag(self, start: int, after: int, marker: str) -> int | None:
        text, f = self.text, CallFormat.TOOL_CALL_TAG
        stop = min(self.upto("</tool_call>", after), self.upto("<tool_call", after))
        pos = self.fence(self.ws(after, stop), stop)
        if marker != "<tool_call>" and (attr := _ATTR_VALUE.search(marker)):  # name="N">{args}
            end = self.known(f, attr.group(2), start, pos, stop)
            return self.close_over(end, "</tool_call>", fence=True)
        if pos < stop and text[pos] in "{[":
            return self.close_over(self.values(f, start, pos, stop), "</tool_call>", fence=True)
        if text.startswith("<function=", pos):
            return self.close_over(self.xml_function(start, pos, stop), "</tool_call>")
        if invoke := _INVOKE.match(text, pos, stop):
            return self.on_xml_invoke(start, invoke.end(), invoke.group())
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
        sep = _DS_SEP.search(text, after, min(stop, after + 300))
        if sep is None:
            self.fail(f, start, stop, "truncated" if stop == self.n else "no tool name")
            return self.close_over(stop, _DS_END)
        head, pos = text[after : sep.start()].strip(), sep.end()
        if head == "function":  # V3 / R1: function<sep>NAME\n```json\n{..}\n``` (V3.1: NAME<sep>{})
            line = text.find("\n", pos, stop)
            head, pos = text[pos : stop if line < 0 else line].strip(), stop if line < 0 else line
        pos = self.fence(self.ws(pos, stop), stop)
        return self.close_over(self.known(f, head, start, pos, stop), _DS_END, fence=True)

    def on_kimi(self, start: int, after: int, marker: str) -> int | None:
        text, f, end = self.text, CallFormat.KIMI, "<|tool_call_end|>"
        stop = min(self.upto(end, after), self.upto("<|tool_call_begin|>", after))
        arg = text.find("<|tool_call_argument_begin|>", after, min(stop, after + 300))
        if arg < 0 and _DS_SEP.search(text, after, min(stop, after + 300)):
            return self.on_deepseek(start, after, marker)  # DeepSeek's tokens written in ASCII
        if arg < 0:
            self.fail(f, start, stop, "truncated" if stop == self.n else "no arguments marker")
            return self.close_over(stop, end)
        name = text[after:arg].strip().removeprefix("functions.")  # functions.NAME:INDEX
        base, colon, index = name.rpartition(":")
        name = base if colon and index.isdigit() else name
        pos = self.ws(arg + len("<|tool_call_argument_begin|>"), stop)
        return self.close_over(self.known(f, name, start, pos, stop), end)

    def on_harmony(self, start: int, after: int, marker: str) -> int | None:
        text, f = self.text, CallFormat.HARMONY
        m = (_ID_RE if marker == "to=" else _NAME_TOKEN).match(text, after)
        if marker == "to=" and (m is None or not self.resolve(m.group())):
            return None  # to=NAME without the functions. prefix: only for a tool we know
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

    def on_xml_invoke(self, start: int, after: int, marker: str) -> int | None:
        """Anthropic-style / MiniMax-M2 ``<invoke name="N"><parameter name="k">v</parameter>
        </invoke>``, maybe inside ``<function_calls>`` or ``<minimax:tool_call>``."""
        text, f = self.text, CallFormat.XML_INVOKE
        ns = marker[1 : marker.index("invoke")]
        attr = _ATTR_VALUE.match(text, after)
        if attr is None:
            end = min(self.n, after + _EXCERPT)
            self.fail(f, start, end, "truncated" if end == self.n else "unreadable invoke tag")
            return end
        name, body, closing = attr.group(2), attr.end(), f"</{ns}invoke>"
        found = self.find(closing, body)
        stop = self.n if found < 0 else found
        pos = self.ws(body, stop)
        if pos < stop and text[pos] in "{[":
            end = self.known(f, name, start, pos, stop)
        elif found < 0:
            self.broken(f, start, body, _Got("open", None, self.n), False, name)
            return self.n
        else:
            args: dict[str, Any] | None = {}
            while args is not None and (m := _INVOKE_PARAM.match(text, pos, stop)):
                key = _ATTR_VALUE.match(text, m.end(), stop)
                value_end = self.find(f"</{m.group('ns') or ''}parameter>", m.end())
                if key is None or not key.end() <= value_end < stop:
                    args = None
                    break
                value = text[key.end() : value_end]  # one newline each side is layout
                value = value[1:] if value.startswith("\n") else value
                value = value[:-1] if value.endswith("\n") else value
                args[key.group(2).strip()] = _xml_value(value)
                pos = self.ws(value_end + len(f"</{m.group('ns') or ''}parameter>"), stop)
            if args is None or pos < stop:  # something other than parameters inside
                self.broken(f, start, body, _Got("bad", None, stop), False, name)
            else:
                self.named(f, name, (args, None, False), start, stop)
            end = stop
        return self.close_over(self.close_over(end, closing), _INVOKE_WRAPPER_END)

    def on_function_name(self, start: int, after: int, _: str) -> int | None:
        """``<function name="N">{json}</function>``."""
        attr = _ATTR_VALUE.match(self.text, after)
        if attr is None:
            return None  # left to the safety net
        found = self.find("</function>", attr.end())
        stop = self.n if found < 0 else found
        end = self.known(
            CallFormat.XML_FUNCTION, attr.group(2), start, self.ws(attr.end(), stop), stop
        )
        return self.close_over(end, "</function>")

    def on_tool_label(self, start: int, after: int, _: str) -> int | None:
        """``Tool: N`` then ``Arguments: {json}`` on the next line; other uses of "Tool:" are
        left to the safety net."""
        text = self.text
        line = self.upto("\n", after)
        name = _unemphasise(text[after:line].strip())
        m = _ARGS_LABEL.match(text, line)
        if not self.resolve(name) or m is None:
            return None
        stop = min(self.upto(end, m.end()) for end in _REACT_ENDS)
        pos = self.fence(self.ws(m.end(), stop), stop)
        if pos >= stop or text[pos] != "{":
            return None
        end = self.known(CallFormat.REACT, name, start, pos, stop, loose=True)
        return self.close_over(end, "", True)

    def on_functionary(self, start: int, after: int, _: str) -> int | None:
        m = _FUNCTIONARY.match(self.text, after)
        pos = self.ws(m.end(), self.n) if m else self.n
        if m is None or m.group(1) == "all" or not self.text.startswith("{", pos):
            return None  # ">>>all" introduces plain text
        return self.known(CallFormat.FUNCTIONARY, m.group(1), start, pos, self.upto(">>>", pos))

    def on_react(self, start: int, after: int, _: str) -> int | None:
        text, f = self.text, CallFormat.REACT
        line = self.upto("\n", after)
        head = _ID_RE.match(text, self.ws(after, line))
        if head and head.end() < line and text[head.end()] in "([" and self.resolve(head.group()):
            return self.react_inline(start, head, line)  # Action: N(k=v) / Action: N[k=v]
        name = _unemphasise(text[after:line].strip())
        found = self.resolve(name)
        if not found:
            return None
        if found[0] != "exact":
            self.near(f, name, found[1], start, line)
            return line
        name = found[1][0]
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

    def react_inline(self, start: int, head: re.Match[str], line: int) -> int | None:
        text, f, opening = self.text, CallFormat.REACT, head.end()
        close = self.paren_end(opening, line)
        if close is None or close < 0:
            return None  # left to the safety net
        if text[opening] == "(":
            return close if self.python(f, start, close, head.start(), close, loose=True) else None
        inner = text[opening + 1 : close - 1].strip()
        self.named(f, head.group(), self.bracket_arguments(inner), start, close)
        return close

    def bracket_arguments(self, inner: str) -> _Args:
        """ReAct's N[..]: a JSON object, k=v pairs, or free text (kept as raw arguments)."""
        if not inner or inner.startswith("{"):
            return self.arguments(bool(inner), inner)
        if len(inner) > _PARSE_MAX_CHARS or self.attempts >= _MAX_ATTEMPTS:
            return None, inner, False
        self.attempts += 1
        try:
            node = ast.parse(f"f({inner})", mode="eval").body
        except Exception:
            return None, inner, False
        return (
            _python_arguments(node, f"f({inner})")
            if isinstance(node, ast.Call)
            else (None, inner, False)
        )

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


def _unemphasise(name: str) -> str:
    while len(name) > 2 and name[0] == name[-1] and name[0] in "`'\"*_":  # **N**, `N`, _N_
        name = name[1:-1].strip()
    return name
