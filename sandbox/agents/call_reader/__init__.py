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

Modules, one job each: `records` (the public records), `reader` (`read_tool_calls` and the
order of the passes), `markers` (explicit markers), `json_calls` (JSON call values and repair),
`pythonic` (pythonic calls), `net` (the safety net), `base` (spans, names and emission shared by
every reader), `helpers` and `patterns` (shared pure helpers, limits and regular expressions).
"""

from sandbox.agents.call_reader.reader import _Reader as _Reader
from sandbox.agents.call_reader.reader import read_tool_calls
from sandbox.agents.call_reader.records import CallFormat, ReadResult, RecoveredCall, UnparsedCall

__all__ = ["CallFormat", "ReadResult", "RecoveredCall", "UnparsedCall", "read_tool_calls"]
