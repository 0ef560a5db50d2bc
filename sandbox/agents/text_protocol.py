"""Tool calling for models without native function calling: tools described in the prompt,
calls written as `<tool_call>{...}</tool_call>` blocks and parsed back into ToolCalls."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from scenarios.records import Message, ToolCall

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')
_ids = itertools.count(1)

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
    arguments = call.raw_arguments if call.raw_arguments is not None else call.arguments
    return "<tool_call>" + json.dumps({"name": call.name, "arguments": arguments}) + "</tool_call>"


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
            parts = [message.content] if message.content else []
            parts += [_render_call(call) for call in message.tool_calls]
            out.append({"role": "assistant", "content": "\n".join(parts)})
        else:
            out.append({"role": "user", "content": message.content or ""})
    for item in out:
        item.pop("_tool_results", None)
    return out


def parse_text_calls(text: str | None) -> tuple[str | None, list[ToolCall]]:
    """Split a reply into its prose and its tool calls; unparsable blocks become raw calls."""
    if not text:
        return text, []
    calls: list[ToolCall] = []
    for block in _BLOCK.findall(text):
        call_id = f"txt_{next(_ids)}"
        try:
            payload = json.loads(block)
        except json.JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("name"), str):
            arguments = payload.get("arguments", {})
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments)
                except json.JSONDecodeError:
                    pass
            if isinstance(arguments, dict):
                calls.append(ToolCall(id=call_id, name=payload["name"], arguments=arguments))
            else:
                calls.append(
                    ToolCall(id=call_id, name=payload["name"], raw_arguments=json.dumps(arguments))
                )
        else:
            name = _NAME.search(block)
            calls.append(
                ToolCall(id=call_id, name=name.group(1) if name else "", raw_arguments=block)
            )
    prose = _BLOCK.sub("", text).strip() or None
    return prose, calls
