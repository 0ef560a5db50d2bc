"""Work limits, key names, regular expressions and small record types that more than one family of
readers shares (those of one family live in its module)."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

_EXCERPT = 300
_MAX_ATTEMPTS = 256  # JSON decodes and Python parses per text
_MAX_MARKERS = 256  # explicit markers handled per text
_PARSE_MAX_CHARS = 100_000
_SCAN_BUDGET = 2_000_000  # characters walked by the bracket matcher
_WS = re.compile(r"\s*")
_NAME_KEYS = ("name", "tool", "tool_name", "action", "function", "recipient_name")
_PREFIXES = ("functions.", "default_api.")  # namespaces dropped before an exactly offered name
_CF = "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
_ID = rf"(?:[^\W\d]|[{_CF}])(?:[\w.]|[{_CF}]){{0,255}}"  # a name as a model may write it
_LEAD_NAME = re.compile(  # a cleanly written name as the first key (after an optional id/type)
    r"""\{\s{0,100}(?:["'](?:id|type)["']\s{0,20}:\s{0,20}["'][^"'\\\n]{0,100}["']\s{0,20},"""
    r"""\s{0,100}){0,2}(?:["'](?:name|tool|tool_name|action|function|recipient_name)["']"""
    r"""\s{0,20}:\s{0,20}"""
    r"""|["']function["']\s{0,20}:\s{0,20}\{\s{0,100}["']name["']\s{0,20}:\s{0,20})"""
    r"""["']([^"'\\\n]{1,256})["'](?=\s{0,20}[,}]|\s{0,20}\Z)"""
)
_KEY_VALUE = re.compile(  # "key": "value", to find a call's name however it is written
    r"""["'“‘]?([A-Za-z_\\][^"'“”‘’\n:{}]{0,79})["'”’]?\s{0,20}:\s{0,20}"""
    r"""["'“‘]([^"'“”‘’\n]{1,300})["'”’]"""
)
_PAREN_SIG = re.compile(r"[()\[\]{}\"'#]")
_PY_STRING_END = {'"': re.compile(r'["\\\n]'), "'": re.compile(r"['\\\n]")}
_PROSE_GOES_ON = re.compile(r"[ \t]{1,20}(?!(?:and|then|or)[ \t]*(?:[\[{<`\n]|$))[a-z]", re.M)
_TRACEBACK = "Traceback (most recent call last):"
_Args = tuple[dict[str, Any] | None, str | None, bool]  # arguments, raw_arguments, repaired


class _Got(NamedTuple):
    status: str  # "ok" | "repaired" | "open" (not closed before stop) | "bad" | "limit"
    value: Any
    end: int
