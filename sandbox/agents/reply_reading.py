"""Turning an agent's reply into the calls the harness executes, with nothing read silently.

Native calls are taken as the provider returned them. A reply without native calls is read
for calls written in its text (``sandbox.agents.call_reader``): always for agents whose calls
can only arrive as text (the text protocol, the local model), otherwise unless
``--recover-calls off``. Every call then gets the harness's own id, unique within the episode
(``t{turn}c{k}``), keeping the provider's id for the round trip. Call-shaped text that could
not be read is returned as ``UnparsedCall`` records for the turn loop to answer and flag.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from sandbox.agents.call_reader import read_tool_calls
from sandbox.agents.protocol import AgentReply
from scenarios.records import Message, ToolCall, UnparsedCall

RecoverCalls = Literal["auto", "off"]

# Call text longer than this is not scanned (bounded work on the event loop); anything that
# names an offered tool beyond it is reported as unparsed, never dropped.
MAX_READ_CHARS = 200_000
_EXCERPT = 300


@dataclass
class ReadReply:
    """A reply as the harness will act on it.

    ``message`` carries the calls with harness ids (``recovered_from`` set on calls read from
    text); ``native_calls`` counts native ones, ``recovered`` counts recovered ones by format,
    ``unparsed`` lists call-shaped text that could not be read.
    """

    message: Message
    native_calls: int = 0
    recovered: dict[str, int] = field(default_factory=dict)
    unparsed: list[UnparsedCall] = field(default_factory=list)


def offered_names(tools: list[dict[str, Any]]) -> list[str]:
    """Tool names from OpenAI-style schemas (``[{"type": "function", "function": {...}}]``)."""
    names = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and name:
            names.append(name)
    return names


def _with_harness_id(call: ToolCall, turn: int, index: int) -> ToolCall:
    provider_id = call.provider_id
    if provider_id is None and call.recovered_from is None and call.id:
        provider_id = call.id
    return call.model_copy(update={"id": f"t{turn}c{index}", "provider_id": provider_id})


def _clean(text: str | None) -> str | None:
    """Text a provider sent, safe to record: lone surrogates (which no UTF-8 file can hold)
    become U+FFFD; everything else is kept exactly."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def _not_run(found: list[ToolCall], reason: str) -> list[UnparsedCall]:
    return [
        UnparsedCall(
            format=call.recovered_from or "text",
            names=[call.name],
            excerpt=json.dumps(call.arguments, ensure_ascii=False)[:_EXCERPT]
            if call.raw_arguments is None
            else call.raw_arguments[:_EXCERPT],
            reason=reason,
        )
        for call in found
    ]


def _read_text(
    text: str, offered: list[str], turn: int
) -> tuple[list[ToolCall], list[UnparsedCall]]:
    """Calls written in ``text`` (harness ids ``t{turn}c{k}``) and unreadable call text."""
    found = read_tool_calls(text, offered, max_chars=MAX_READ_CHARS)
    calls = [
        ToolCall(
            id=f"t{turn}c{k}",
            name=item.name,
            arguments=item.arguments if item.arguments is not None else {},
            raw_arguments=item.raw_arguments if item.arguments is None else None,
            recovered_from=str(item.format),
        )
        for k, item in enumerate(found.calls, 1)
    ]
    unparsed = [
        UnparsedCall(
            format=str(item.format),
            names=list(item.names),
            excerpt=item.excerpt[:_EXCERPT],
            reason=item.reason,
        )
        for item in found.unparsed
    ]
    if found.truncated:
        # Read on from a little before the cut, so a name split by it is seen whole.
        overlap = 2 * max(len(name) for name in offered)
        rest = text[MAX_READ_CHARS - overlap :]
        # Exact names, and names written another way (case, separators) as the reader folds them.
        folded = _fold(rest)
        named = [name for name in offered if name in rest or _fold(name) in folded]
        if named:
            unparsed.append(
                UnparsedCall(
                    format="oversized",
                    names=named,
                    excerpt=text[MAX_READ_CHARS : MAX_READ_CHARS + _EXCERPT],
                    reason=f"the reply is longer than {MAX_READ_CHARS:,} characters; "
                    "the rest was not read",
                )
            )
    return calls, unparsed


def _fold(text: str) -> str:
    return re.sub(r"[\s_\-.]+", "", text.casefold())


def _same_call(a: ToolCall, b: ToolCall) -> bool:
    return a.name == b.name and (a.arguments == b.arguments or a.raw_arguments is not None)


def read_reply(
    reply: AgentReply, offered: list[str], *, turn: int, recover: RecoverCalls = "auto"
) -> ReadReply:
    """The reply's calls, native or recovered from its text; see the module docstring.

    Text is read on every path; what is not run is never silent: with native calls present,
    calls written in the text beside them that repeat none of them, and with
    ``recover="off"`` (for an agent that also has native calls) every call written in text,
    are reported as ``UnparsedCall`` (not run, the agent is told, the episode flagged).
    """
    message = reply.message.model_copy(update={"content": _clean(reply.message.content)})
    text = message.content
    if message.tool_calls:
        calls = [_with_harness_id(c, turn, k) for k, c in enumerate(message.tool_calls, 1)]
        native = sum(1 for c in calls if c.recovered_from is None)
        recovered = Counter(c.recovered_from for c in calls if c.recovered_from is not None)
        unparsed: list[UnparsedCall] = []
        if text and offered:
            written, unreadable = _read_text(text, offered, turn)
            extra = [w for w in written if not any(_same_call(w, c) for c in calls)]
            unparsed = _not_run(extra, "written in the text beside native calls: not run")
            # Unreadable text that only names tools called natively is an echo of those calls.
            called = {c.name for c in calls}
            unparsed += [u for u in unreadable if not u.names or set(u.names) - called]
        return ReadReply(
            message.model_copy(update={"tool_calls": calls}),
            native_calls=native,
            recovered=dict(recovered),
            unparsed=unparsed,
        )
    if not text or not offered:
        return ReadReply(message)
    calls, unparsed = _read_text(text, offered, turn)
    if recover == "off" and not reply.calls_in_text:
        not_run = _not_run(calls, "written in text and --recover-calls is off: not run")
        return ReadReply(message, unparsed=not_run + unparsed)
    recovered = Counter(c.recovered_from for c in calls if c.recovered_from is not None)
    return ReadReply(
        message.model_copy(update={"tool_calls": calls}),
        recovered=dict(recovered),
        unparsed=unparsed,
    )


def corrective_message(unparsed: list[UnparsedCall], protocol: str) -> Message:
    """What the agent is told about calls it wrote that did not run (could not be read, or
    were not read). ``protocol`` is how the episode asks for calls: "native" or "text"."""
    lines = ["No tool was run for some of the tool calls in your last reply:"]
    for item in unparsed[:5]:
        named = f" ({', '.join(item.names)})" if item.names else ""
        excerpt = " ".join(item.excerpt.split())[:120]
        lines.append(f"- {item.reason}{named}: {excerpt}")
    if len(unparsed) > 5:
        lines.append(f"- and {len(unparsed) - 5} more")
    how = 'as <tool_call>{"name": "TOOL_NAME", "arguments": {...}}</tool_call> with valid JSON'
    if protocol == "text":
        lines.append(f"To call a tool, write each call exactly {how}.")
    else:
        lines.append(
            "To call a tool, use the tool-calling interface with the arguments as a valid JSON "
            f"object (or, if you cannot, write the call {how})."
        )
    return Message(role="user", content="\n".join(lines), meta={"corrective": "unparsed_call"})
