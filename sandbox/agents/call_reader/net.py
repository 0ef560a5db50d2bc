"""The safety net: an offered name (or a near spelling of it) that no reader claimed, written in
call syntax, is flagged; Cline-style `<N><k>v</k></N>` is read."""

from __future__ import annotations

import html
import re

from sandbox.agents.call_reader.base import _Base
from sandbox.agents.call_reader.helpers import _fold, _xml_value
from sandbox.agents.call_reader.patterns import _MAX_MARKERS, _NAME_KEYS, _PARSE_MAX_CHARS
from sandbox.agents.call_reader.records import CallFormat

_NAMEY = ("name", "tool", "function", "action", "recipient", "call", "invoke")
# Call-like context of a tool name that no reader claimed (the safety net):
_NET_PRE = re.compile(  # before the name, on its line
    r"(?:(?P<mark><<function>>|<\|recipient\|>|✿FUNCTION✿[ \t]*:|\bto="
    r"|(?<![\w\-])(?i:call|action|tool|tool[ _]call|function[ _]call|function)[ \t]*\*{0,2}:)"
    r"|[\"'](?P<qkey>[\w\-. ]{1,40})[\"'][ \t]*:"
    r"|(?<![\w\-])(?P<akey>[\w\-]{1,40})[ \t]*=[ \t]*[\"']"  # an attribute: quoted
    r"|^[ \t]*(?:-[ \t]+)?(?P<ykey>[\w\-]{1,40})[ \t]*:"
    r"|<(?P<tag>[\w\-:|]{1,40})(?:[ \t][^<>\n]{0,100})?>"
    r"|(?P<quote>^[ \t]*(?:>[ \t]*)+))"
    r"[ \t]*[\"'`*]{0,3}[ \t]*\Z|(?P<functionary>>>>)\Z"
)
_NET_AFTER = re.compile(  # after the name: {.., [k=v], [{..}], (args) on a quoted line
    r"[ \t]*(?P<brace>\{|\[[ \t]*(?:\{|[\"']?[\w\-]{1,64}[\"']?[ \t]*[=:]))"
    r"|(?P<paren>\([ \t]*(?![ \t)]|\.\.\.|…))"
)
_NET_EOL = re.compile(  # the name ends its line ("call `N` with:"), the call follows below
    r"[`'\"*]{0,3}[ \t]*(?:(?:with|using)\b[^\n:]{0,60})?:?[ \t]*(?:\n|\Z)"
)
_NET_NEXT = re.compile(r"[ \t]*(?:\{|```|~~~|\[[ \t]*[{\"'])")
_XML_CHILD = re.compile(r"<([A-Za-z_][\w\-]{0,63})>")
_XML_MARKUP = re.compile(r"<[A-Za-z/!?]")
_TAG_REST = re.compile(r"(?:[ \t][^<>\n]{0,200})?/?>")


class _SafetyNet(_Base):
    """The last pass: flag call-like mentions that no reader above read."""

    def net(self) -> None:
        """Flag offered names (also camelCase, kebab-case, ...) that no reader claimed where
        their context is call syntax; mere mentions in prose stay nothing."""
        text, flagged = self.text, 0
        for m in self.spelt.finditer(text, self.body):
            s, e = m.start(), m.end()
            if not self.free(s, e):
                continue
            found = self.resolve(m.group()) or self.resolve(_fold(m.group()))
            names = found[1] if found else tuple(self.folded.get(_fold(m.group()), ()))
            if not names:
                continue
            span = self.call_like(s, e)
            if span is None:
                continue
            if flagged == _MAX_MARKERS:
                reason = f"not read: more than {_MAX_MARKERS} call-like mentions"
                self.fail(CallFormat.CALL_LIKE, s, self.n, reason, names)
                return
            flagged += 1
            if not self.xml_tool(m.group(), s, span):
                reason = "tool named in call-like text that no known format reads"
                if m.group() not in self.offered:
                    reason = f"name {m.group()[:100]!r} does not match an offered tool exactly"
                self.fail(CallFormat.CALL_LIKE, span[0], span[1], reason, names)
            self.claim(*span)

    def call_like(self, s: int, e: int) -> tuple[int, int] | None:
        """The span to flag if the name at text[s:e] is written in call syntax, else None."""
        text = self.text
        line_start = text.rfind("\n", max(0, s - 400), s) + 1 or max(0, s - 400)
        line_end = self.upto("\n", e)
        pre, after = text[max(line_start, s - 200) : s], text[e : min(line_end, e + 200)]
        if s - line_start > 200:
            pre = "\x00" + pre  # not the line's start
        escaped = "&" in pre or "&" in after
        if escaped:
            pre, after = html.unescape(pre), html.unescape(after)
        if pre.endswith("</"):
            return None  # a closing tag: its opening tag is the call
        if pre.endswith("<") and _TAG_REST.match(after):  # <N> / <N attr="..">: Cline, ...
            close = text.find(f"</{text[s:e]}>", e, min(self.n, e + _PARSE_MAX_CHARS))
            return s - 1, line_end if close < 0 else close + len(text[s:e]) + 3
        m = _NET_PRE.search(pre)
        if m is not None:
            key = m.group("qkey") or m.group("akey") or m.group("ykey") or m.group("tag")
            if m.group("mark") or m.group("functionary"):
                return line_start, line_end
            if key and any(w in key.casefold() for w in _NAMEY):
                standard = m.group("qkey") in _NAME_KEYS and not escaped  # JSON readers' own
                if not standard and (not m.group("ykey") or not after.strip("'\"` \t*")):
                    return line_start, line_end
        got = _NET_AFTER.match(after)
        # [N(..), ..] with N exactly offered is the pythonic reader's; a near miss is flagged
        listed = pre.rstrip().endswith("[") and text[s:e] not in self.offered
        quoted_or_listed = (m and m.group("quote")) or listed
        if got and (got.group("brace") or (got.group("paren") and quoted_or_listed)):
            return line_start, line_end
        if _NET_EOL.match(text, e) and not text[line_start:s].lstrip().startswith("#"):
            nxt = self.ws(line_end, min(self.n, line_end + 200))
            nxt = text.rfind("\n", 0, nxt) + 1 if nxt > line_end else nxt
            if line_end < self.n and _NET_NEXT.match(text, nxt):
                return line_start, line_end
        return None

    def xml_tool(self, written: str, s: int, span: tuple[int, int]) -> bool:
        """Read ``<N><k>v</k>..</N>`` (Cline, Roo-Code) when N is an offered name exactly and
        every child is a simple element. Returns whether it was read."""
        text, end = self.text, span[1]
        if (
            written not in self.offered
            or text[s - 1 : s] != "<"
            or text[s + len(written) : s + len(written) + 1] != ">"
        ):
            return False
        close = end - len(written) - 3
        if not text.startswith(f"</{written}>", close):
            return False
        pos, args = self.ws(s + len(written) + 1, close), {}
        while pos < close:
            child = _XML_CHILD.match(text, pos, close)
            if child is None:
                return False
            value_end = text.find(f"</{child.group(1)}>", child.end(), close)
            if value_end < 0 or _XML_MARKUP.search(text, child.end(), value_end):
                return False
            value = text[child.end() : value_end]  # one newline each side is layout
            value = value[1:] if value.startswith("\n") else value
            value = value[:-1] if value.endswith("\n") else value
            args[child.group(1)] = _xml_value(value)
            pos = self.ws(value_end + len(child.group(1)) + 3, close)
        self.call(written, (args, None, False), CallFormat.XML_TOOL_TAG, span[0], end)
        return True
