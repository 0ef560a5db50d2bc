"""Turning an agent's reply into the calls the harness executes, with nothing read silently.

Native calls are taken as the provider returned them. A reply without native calls is read
for calls written in its text (``sandbox.agents.call_reader``): always for agents whose calls
can only arrive as text (the text protocol, the local model), otherwise unless
``--recover-calls off``. Every call then gets the harness's own id, unique within the episode
(``t{turn}c{k}``), keeping the provider's id for the round trip. Call-shaped text that could
not be read is returned as ``UnparsedCall`` records for the turn loop to answer and flag.
"""

from __future__ import annotations

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


def read_reply(
    reply: AgentReply, offered: list[str], *, turn: int, recover: RecoverCalls = "auto"
) -> ReadReply:
    """The reply's calls, native or recovered from its text; see the module docstring."""
    message = reply.message
    if message.tool_calls:
        calls = [_with_harness_id(c, turn, k) for k, c in enumerate(message.tool_calls, 1)]
        native = sum(1 for c in calls if c.recovered_from is None)
        recovered = Counter(c.recovered_from for c in calls if c.recovered_from is not None)
        return ReadReply(
            message.model_copy(update={"tool_calls": calls}),
            native_calls=native,
            recovered=dict(recovered),
        )
    text = message.content
    if not text or not offered or (recover == "off" and not reply.calls_in_text):
        return ReadReply(message)
    found = read_tool_calls(text, offered, max_chars=MAX_READ_CHARS)
    calls = []
    for k, item in enumerate(found.calls, 1):
        calls.append(
            ToolCall(
                id=f"t{turn}c{k}",
                name=item.name,
                arguments=item.arguments if item.arguments is not None else {},
                raw_arguments=item.raw_arguments if item.arguments is None else None,
                recovered_from=str(item.format),
            )
        )
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
        rest = text[MAX_READ_CHARS:]
        named = [name for name in offered if name in rest]
        if named:
            unparsed.append(
                UnparsedCall(
                    format="oversized",
                    names=named,
                    excerpt=rest[:_EXCERPT],
                    reason=f"the reply is longer than {MAX_READ_CHARS:,} characters; "
                    "the rest was not read",
                )
            )
    recovered = Counter(c.recovered_from for c in calls if c.recovered_from is not None)
    return ReadReply(
        message.model_copy(update={"tool_calls": calls}),
        recovered=dict(recovered),
        unparsed=unparsed,
    )


def corrective_message(unparsed: list[UnparsedCall], protocol: str) -> Message:
    """What the agent is told about calls it wrote that could not be read (no tool ran)."""
    lines = ["Your last reply contained a tool call that could not be read, so no tool was run"]
    lines[0] += " for it:" if len(unparsed) == 1 else " for them:"
    for item in unparsed[:5]:
        named = f" ({', '.join(item.names)})" if item.names else ""
        excerpt = " ".join(item.excerpt.split())[:120]
        lines.append(f"- {item.reason}{named}: {excerpt}")
    if protocol == "text":
        lines.append(
            'Write each call again exactly as <tool_call>{"name": "TOOL_NAME", "arguments": '
            "{...}}</tool_call> with valid JSON."
        )
    else:
        lines.append(
            "Call the tool again through the tool-calling interface, with arguments as a "
            "valid JSON object."
        )
    return Message(role="user", content="\n".join(lines), meta={"corrective": "unparsed_call"})
