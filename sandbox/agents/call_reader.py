"""Recover tool calls that a model wrote as text instead of as native (OpenAI `tool_calls`) calls.

`read_tool_calls(text, offered)` returns the calls it could read (`RecoveredCall`, offered tool
names only) and the call-shaped fragments it could not (`UnparsedCall`), so that a call written
in an unexpected way is flagged instead of silently read as "no call". It never raises, and its
work is bounded (`max_chars`, and fixed caps on decode, repair, parse and scan work).

Rules:
- Explicit markers (tags, special tokens) that name a tool not offered, or hold text that cannot
  be read, give an `UnparsedCall`. Loose forms (bare or fenced JSON, pythonic, ReAct) naming an
  unknown tool are ignored: prose may hold arbitrary JSON. Prose that only mentions a tool (even
  as `name()` inside a sentence, or in backticks as a bare name) is never a call nor unparsed.
- Tool names must match an offered name exactly. The one exception: the namespace prefixes
  `functions.` and `default_api.` (OpenAI multi_tool_use, Gemini) before an offered name are
  dropped. A name that only matches after folding (case, surrounding space, `-` for `_`, format
  characters such as zero-width spaces, NFKC width forms, Cyrillic/Greek lookalike letters,
  another prefix such as `tools.`, camelCase / PascalCase / kebab-case for snake_case) is never
  run: in any call-shaped fragment, loose or explicit,
  it gives an `UnparsedCall` naming the offered tool ("name 'X' does not match an offered tool
  exactly").
- A call object is {"name"|"tool"|"tool_name"|"action"|"function"|"recipient_name": NAME,
  ARGS_KEY: ARGS} with ARGS_KEY one of "arguments", "parameters", "args", "input", "inputs",
  "params", "kwargs", "argument", "tool_input", "tool_args", "tool_arguments", "tool_params",
  "action_input", "function_args"; or OpenAI's {"function": {"name": .., "arguments": ..}};
  {"tool_calls": [..]}, {"tool_uses": [..]} and {"function_call": {..}} wrappers are unwrapped
  (also one level down: {"response": {"tool_calls": [..]}}). An object with two different
  name keys (duplicate "name") is ambiguous: an `UnparsedCall`, never either name.
  ARGS may be an object, a string holding a JSON object, or missing, null or "" (-> {}); anything
  else gives `arguments=None` with `raw_arguments` (the string as written, or the value's JSON
  text). Inside an explicit marker, an object with no ARGS_KEY but other keys (arguments under an
  unknown key, or flattened) gives `arguments=None` with the object's JSON as `raw_arguments`.
  In loose forms an echoed tool description is not a call: an object whose ARGS is a JSON
  schema (an object of property schemas under "properties", or {"type": "object"} with only
  schema keywords), or that has a "description" key and no ARGS_KEY.
- Near-JSON (comments, trailing commas, single or curly quotes, True/None) is read with
  `json_repair` only after `json.loads` fails and only when the fragment is closed; then
  `repaired=True`. A fragment cut off by the end of the text is never completed: if its tool
  name can be read (the marker gives it, or a cleanly written "name" is the first key) it gives
  `RecoveredCall(arguments=None, raw_arguments=fragment)`, else `UnparsedCall("truncated")`.
- Pythonic calls are parsed with `ast` (never evaluated); values must be literals (JSON's
  true/false/null allowed); positional or non-literal arguments give `arguments=None`. A list
  `[f(..), g(..)]` is read anywhere. Call lines (`f(..)`, also `print(f(..))`, `>>> f(..)`,
  `- f(..)`, `f(..);`, `await f(..)`, `x = f(..)`, possibly over several lines) are read only
  when the whole reply (after a leading reasoning block) is such lines; otherwise a call line
  gives `UnparsedCall("call written as a line inside prose")` (decorated lines only when they
  have arguments; `f(...)` describes a signature and is nothing). A call line cut off by the end
  of the text gives `arguments=None` if the reply is only call lines, else "truncated". A
  ```python / ```py / ```tool_code / ``` block holding only calls to offered tools (one
  statement each, comments allowed) is read; a tool call mixed with other code gives
  `UnparsedCall("tool call written inside code")`.
- A call object or pythonic list in an inline code span (single backticks) with other text
  around it gives `UnparsedCall("call object quoted inline in prose")`; alone it is read. So
  does one without backticks that has prose before it on its line (not ending in ":") and is
  followed by the same sentence going on (a lowercase word, other than "and"/"then"/"or"
  before another call). Call lines inside a Python traceback block are not calls.
- Safety net: after all readers, each offered name (or a camelCase/kebab/upper-case spelling
  of it) that no reader claimed and whose context is call syntax (see `_Reader.call_like`:
  `{`/`[k=v]` after it, the next line opening a JSON object or fence, an XML tag, a marker
  such as `Call:`/`Tool:`/`<<function>>`/`>>>` before it, the value of a name-like key, also
  HTML-escaped) gives `UnparsedCall(CALL_LIKE)`; Cline-style `<N><k>v</k></N>` with N exactly
  offered and simple children is read (XML_TOOL_TAG). Mentions in prose stay nothing.
- Only a reasoning block at the start of the reply is skipped (a call drafted while reasoning is
  not an action): `<think>...</think>` as the reply's first thing, or Qwen3's form where the
  reply starts with reasoning and the first `</think>` (followed by white space, a tag or the
  end, with no `<think>` before it) closes it. A `<think>` anywhere else is ordinary text; an
  unclosed block is read, since the model may never have left it.
- XML-style parameter values (Qwen3-Coder, GLM-4.5, `<invoke>`) that are JSON other than a
  string (30, true, [..]) are decoded, as those models write non-string values as JSON; others
  stay strings (no schema is known here, so a string "30" also becomes 30).
- Spans: calls written in one list, marker or fenced block share its span; bare JSON objects
  get one span each. The first (outermost) reader claims a span; nothing inside it is reported
  again. Markers are read first (in text order), then fenced blocks, pythonic, bare JSON.
"""

from __future__ import annotations

import ast
import bisect
import html
import json
import re
import textwrap
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, NamedTuple

import json_repair
import yaml


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
    XML_INVOKE = "xml_invoke"  # Anthropic-style / MiniMax-M2 <invoke name="N"><parameter name=..
    XML_TOOL_TAG = "xml_tool_tag"  # Cline / Roo-Code <N><k>v</k></N>
    YAML = "yaml"  # ```yaml block holding name: N / arguments: {..}
    CALL_LIKE = "call_like_text"  # a tool named in call-like text no reader above reads


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

_WS = re.compile(r"\s*")
_SIG = re.compile(r"[\"'{}\[\]/]")
_STRING_END = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\]")}
_NAME_KEYS = ("name", "tool", "tool_name", "action", "function", "recipient_name")
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
_PREFIXES = ("functions.", "default_api.")  # namespaces dropped before an exactly offered name
_FOLD_PREFIXES = ("functions.", "default_api.", "tools.", "tool.", "function.", "functions:")
_CF = "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
_ID = rf"(?:[^\W\d]|[{_CF}])(?:[\w.]|[{_CF}]){{0,255}}"  # a name as a model may write it
# Latin lookalikes (Cyrillic, Greek, IPA) that NFKC leaves alone; applied after casefold.
_HOMOGLYPHS = str.maketrans(
    "аеорсухіјѕԁһԛԝӏкмнтвьуαοριυνκτχεϲϳɑɡıℓ",
    "aeopcyxijsdhqwlkmhtbbyaopiuvktxecjagil",
)
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
_LEAD_NAME = re.compile(  # a cleanly written name as the first key (after an optional id/type)
    r"""\{\s{0,100}(?:["'](?:id|type)["']\s{0,20}:\s{0,20}["'][^"'\\\n]{0,100}["']\s{0,20},"""
    r"""\s{0,100}){0,2}(?:["'](?:name|tool|tool_name|action|function|recipient_name)["']"""
    r"""\s{0,20}:\s{0,20}"""
    r"""|["']function["']\s{0,20}:\s{0,20}\{\s{0,100}["']name["']\s{0,20}:\s{0,20})"""
    r"""["']([^"'\\\n]{1,256})["'](?=\s{0,20}[,}]|\s{0,20}\Z)"""
)
_BARE = re.compile(  # {key:
    r"""\{\s{0,100}(?:["'“‘][^"'“”‘’\n]{1,64}["'”’]|[A-Za-z_]\w{0,63})\s{0,20}:"""
)
_KEY_VALUE = re.compile(  # "key": "value", to find a call's name however it is written
    r"""["'“‘]?([A-Za-z_\\][^"'“”‘’\n:{}]{0,79})["'”’]?\s{0,20}:\s{0,20}"""
    r"""["'“‘]([^"'“”‘’\n]{1,300})["'”’]"""
)
_QUOTED_OBJECT = re.compile(r"'(\{[^']{0,50000}\})'")
_NAME_TOKEN = re.compile(r"[A-Za-z_][\w.\-]{0,255}")
_MISTRAL_NAME = re.compile(r"([^\s\[\]{}]{1,256})(?:\[CALL_ID\][^\[\s]{0,64})?\[ARGS\]")
_BUILTIN = re.compile(r"[A-Za-z_]\w{0,255}\.call\(")
_FUNCTIONARY = re.compile(r"([A-Za-z_][\w.\-]{0,255})[ \t]*\n")
_ACTION_INPUT = re.compile(r"\s*(?i:action)[ \t]*(?i:input)[ \t]*:")
_REACT_ENDS = ("\nObservation", "\nThought:", "\nFinal Answer:", "\nAction:")
_FENCE_OPEN = re.compile(r"^[ \t]{0,3}```[ \t]*([\w+.\-]*)[^\n]*$", re.MULTILINE)
_FENCE_CLOSE = re.compile(r"^[ \t]{0,3}```[ \t]*$", re.MULTILINE)
_JSON_LANGS = ("", "json", "json5", "jsonc", "tool_call", "tool_calls", "tool_code")
_PY_LANGS = ("py", "python", "python3")
_ID_RE = re.compile(_ID)
_PY_LIST = re.compile(rf"\[\s{{0,100}}({_ID})\s{{0,20}}\(")
_PY_LINE = re.compile(  # a call line, maybe decorated: >>> f(, - f(, await f(, x = f(, print(f(
    r"^[ \t]*(?P<pre>>>>[ \t]*|[-*+•][ \t]+|\d{1,3}[.)][ \t]+|await[ \t]+"
    rf"|[A-Za-z_]\w{{0,63}}[ \t]*=[ \t]*)?(?P<tick>`?)(?P<print>print\()?(?P<name>{_ID})\(",
    re.MULTILINE,
)
_LINE_TAIL = re.compile(r"[ \t]*\)?[ \t]*;?[ \t]*`?[ \t]*(?:#[^\n]*)?$", re.MULTILINE)
_PAREN_SIG = re.compile(r"[()\[\]{}\"'#]")
_PY_STRING_END = {'"': re.compile(r'["\\\n]'), "'": re.compile(r"['\\\n]")}
_ATTR_VALUE = re.compile(r"""[ \t]*(["'])([^"'\n<>]{0,256})\1[ \t]*>""")
_INVOKE = re.compile(r"<(?:[A-Za-z][\w\-]{0,30}:)?invoke[ \t]+name[ \t]*=")
_INVOKE_WRAPPER_END = re.compile(r"</(?:[A-Za-z][\w\-]{0,30}:)?(?:function_calls|tool_call)>")
_INVOKE_PARAM = re.compile(r"""<(?P<ns>[A-Za-z][\w\-]{0,30}:)?parameter[ \t]+name[ \t]*=""")
_THINK_CLOSE = re.compile(r"</think>(?=\s|<|\Z)")
_ARGS_LABEL = re.compile(r"\s*(?i:arguments|args|input|parameters|action[ \t]*input)[ \t]*:")
_PROSE_GOES_ON = re.compile(r"[ \t]{1,20}(?!(?:and|then|or)[ \t]*(?:[\[{<`\n]|$))[a-z]", re.M)
_TRACEBACK = "Traceback (most recent call last):"
_YAML_LANGS = ("yaml", "yml")
_YAML_MAX_CHARS = 20_000
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
_PY_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None, "none": None}

_Args = tuple[dict[str, Any] | None, str | None, bool]  # arguments, raw_arguments, repaired


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

    def run(self) -> None:
        self.reasoning()
        self.markers()
        self.fences()
        self.pythonic()
        self.bare_json()
        self.net()

    # ---- passes -------------------------------------------------------------------------------

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

    # ---- explicit markers: each returns the end of the span it claims, or None -----------------

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

    # ---- safety net -------------------------------------------------------------------------

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

    # ---- JSON -----------------------------------------------------------------------------------

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

    # ---- helpers ------------------------------------------------------------------------------

    def dup_names(self, obj: dict[str, Any]) -> tuple[str, ...] | None:
        """None if the call object names one tool; else the offered tools among its names."""
        for item in (obj, obj.get("function")):
            if isinstance(item, dict) and id(item) in self.dups:
                found = (self.resolve(n) for n in self.dups[id(item)][1])
                return tuple(dict.fromkeys(n for got in found if got for n in got[1]))
        return None

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
        elif ch == "/":  # a comment is skipped; a lone slash is text
            if text.startswith(("//", "/*"), j):
                k = text.find("\n" if text[j + 1] == "/" else "*/", j + 2, stop)
                i = stop if k < 0 else k + (1 if text[j + 1] == "/" else 2)
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


def _fold(name: str) -> str:
    """A name as it compares loosely: no format characters (zero-width spaces, direction
    marks), NFKC, casefolded, Latin lookalike letters mapped, no surrounding space, no namespace
    prefix or surrounding punctuation, and no "_", "-" or inner white space (so camelCase,
    PascalCase and kebab-case spellings fold alike)."""
    name = "".join(ch for ch in name[:300] if unicodedata.category(ch) != "Cf")
    name = unicodedata.normalize("NFKC", name).casefold().translate(_HOMOGLYPHS).strip()
    for prefix in _FOLD_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return re.sub(r"[\s\-_]+", "", re.sub(r"^\W+|\W+$", "", name))


def _unemphasise(name: str) -> str:
    while len(name) > 2 and name[0] == name[-1] and name[0] in "`'\"*_":  # **N**, `N`, _N_
        name = name[1:-1].strip()
    return name


def _spelling(name: str) -> str:
    """A pattern for `name` written with its words joined by "_", "-" or nothing (any case)."""
    words = [w for w in re.split(r"[_\-\s]+|(?<=[a-z0-9])(?=[A-Z])", name) if w]
    return "[_\\-]?".join(re.escape(w) for w in words)


def _unescape(text: str) -> str:
    try:
        value = json.loads(f'"{text}"')
    except (ValueError, RecursionError):
        return text
    return value if isinstance(value, str) else text


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
