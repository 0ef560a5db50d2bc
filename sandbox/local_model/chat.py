"""Our chat handling for the local model: messages shaped for the model's own template.

llama.cpp's built-in function-calling formats are unreliable with these models (tools ignored,
empty replies, errors after a tool result), while the model's own chat template, which puts
the tool signatures in the system turn and asks for ``<tool_call>{json}</tool_call>`` blocks,
works. The server returns the model's text as written; the harness reads the calls in it
(``sandbox.agents.call_reader``). Pure functions only, so they are tested without a model.
"""

from __future__ import annotations

import json
from typing import Any


def _arguments_object(arguments: Any) -> Any:
    """The template renders ``arguments | tojson``: give it the object, not the JSON string."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages reshaped for the model's template (string content, object arguments)."""
    shaped: list[dict[str, Any]] = []
    for message in messages:
        item = dict(message)
        content = item.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        item["content"] = content or ""
        if item.get("tool_calls"):
            item["tool_calls"] = [
                {
                    "id": call.get("id"),
                    "type": "function",
                    "function": {
                        "name": call.get("function", {}).get("name", ""),
                        "arguments": _arguments_object(
                            call.get("function", {}).get("arguments", {})
                        ),
                    },
                }
                for call in item["tool_calls"]
            ]
        shaped.append(item)
    return shaped


def tool_names(tools: list[dict[str, Any]] | None) -> set[str]:
    return {
        str(tool.get("function", {}).get("name"))
        for tool in tools or []
        if isinstance(tool, dict) and tool.get("function", {}).get("name")
    }
