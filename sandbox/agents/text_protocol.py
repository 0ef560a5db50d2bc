"""Tool calling for models without native function calling: tools described in the prompt,
calls written as text (``<tool_call>{...}</tool_call>`` is what we ask for; any format the
call reader knows is accepted) and read back by the turn loop.

The model's own replies go back to it verbatim. Native calls from earlier turns (an episode
that switched protocol, a branched recording) are rendered in the format we ask for, with
their argument text exactly as it was written.
"""

from __future__ import annotations

import json
from typing import Any

from scenarios.records import Message, ToolCall

INSTRUCTIONS = """You can use tools. They are described as a JSON list between the lines
<tools> and </tools>:
<tools>
{tools}
</tools>
To call a tool, reply with one block per call, exactly in this form:
<tool_call>{{"name": "TOOL_NAME", "arguments": {{...}}}}</tool_call>
You may write several blocks in one reply; they run in order.
Results come back in <tool_result> blocks."""


def describe_tools(tools: list[dict[str, Any]]) -> str:
    listed = [
        {
            "name": t["function"]["name"],
            "description": t["function"].get("description", ""),
            "parameters": t["function"].get("parameters", {}),
        }
        for t in tools
    ]
    return INSTRUCTIONS.format(tools=json.dumps(listed, ensure_ascii=False))


def _render_call(call: ToolCall) -> str:
    if call.arguments_text is not None and call.arguments_text.strip():
        arguments = call.arguments_text
    elif call.raw_arguments is not None:
        arguments = json.dumps(call.raw_arguments, ensure_ascii=False)
    else:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
    name = json.dumps(call.name, ensure_ascii=False)
    return f'<tool_call>{{"name": {name}, "arguments": {arguments}}}</tool_call>'


def to_text_messages(messages: list[Message], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with tool traffic folded into plain system/user/assistant text."""
    out: list[dict[str, Any]] = []
    tool_block = describe_tools(tools)
    has_system = any(m.role == "system" for m in messages)
    if not has_system:
        out.append({"role": "system", "content": tool_block})
    for message in messages:
        if message.role == "system":
            out.append({"role": "system", "content": f"{message.content or ''}\n\n{tool_block}"})
        elif message.role == "tool":
            block = f'<tool_result name="{message.name}">\n{message.content}\n</tool_result>'
            if out and out[-1]["role"] == "user" and out[-1].get("_tool_results"):
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_tool_results": True})
        elif message.role == "assistant":
            # Calls read from the text are already in it; only native ones need writing out.
            native = [c for c in message.tool_calls if c.recovered_from is None]
            parts = [message.content] if message.content else []
            parts += [_render_call(call) for call in native]
            out.append({"role": "assistant", "content": "\n".join(parts)})
        else:
            out.append({"role": "user", "content": message.content or ""})
    for item in out:
        item.pop("_tool_results", None)
    return out
