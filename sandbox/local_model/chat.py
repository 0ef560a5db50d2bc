"""Our chat handling for the local model: render its own template, parse its tool calls.

llama.cpp's built-in function-calling formats are unreliable with these models (tools ignored,
empty replies, errors after a tool result), while the model's own chat template, which puts
the tool signatures in the system turn and asks for ``<tool_call>{json}</tool_call>`` blocks,
works. The server does not turn those blocks into OpenAI ``tool_calls``, so this module does,
in both directions: earlier calls are rendered back in the template's shape, new ones parsed.
Pure functions only, so they are tested without a model.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


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


def _call_id(index: int, name: str, arguments: str) -> str:
    digest = hashlib.sha256(f"{index}:{name}:{arguments}".encode()).hexdigest()[:16]
    return f"call_{digest}"


def _as_call(payload: Any) -> tuple[str, Any] | None:
    if not isinstance(payload, dict):
        return None
    name = payload.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments = payload.get("arguments", payload.get("parameters", {}))
    return name, arguments


def parse_tool_calls(text: str, tool_names: set[str]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split a completion into its prose and OpenAI-shaped tool calls.

    ``<tool_call>`` blocks (the last one may be unterminated when generation hit the token
    limit) are parsed as JSON; a block that does not parse is kept as prose so the agent's
    words are never lost. With tools offered and no tagged call, a reply or a line that is
    nothing but one JSON call object naming an offered tool (small models sometimes forget the
    tags) counts as a call too. Arguments that are not a JSON
    object are passed on as their raw text, so the harness reports them as malformed.
    """
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    position = 0
    for match in _BLOCK.finditer(text):
        kept.append(text[position : match.start()])
        position = match.end()
        try:
            parsed = _as_call(json.loads(match.group(1)))
        except ValueError:
            parsed = None
        if parsed is None:
            kept.append(match.group(0))
            continue
        calls.append(_openai_call(len(calls), *parsed))
    kept.append(text[position:])
    prose = "".join(kept).strip()
    if not calls and tool_names:
        prose = _untagged_calls(prose, tool_names, calls)
    return (prose or None), calls


def _offered_call(text: str, tool_names: set[str]) -> tuple[str, Any] | None:
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        parsed = _as_call(json.loads(text))
    except ValueError:
        return None
    return parsed if parsed is not None and parsed[0] in tool_names else None


def _untagged_calls(prose: str, tool_names: set[str], calls: list[dict[str, Any]]) -> str:
    """Calls written without tags: the whole reply, or whole lines, as one JSON call object
    naming an offered tool. Other lines stay prose."""
    whole = _offered_call(prose, tool_names)
    if whole is not None:
        calls.append(_openai_call(0, *whole))
        return ""
    kept = []
    for line in prose.splitlines():
        found = _offered_call(line.strip(), tool_names)
        if found is None:
            kept.append(line)
        else:
            calls.append(_openai_call(len(calls), *found))
    return "\n".join(kept).strip()


def _openai_call(index: int, name: str, arguments: Any) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {
        "id": _call_id(index, name, text),
        "type": "function",
        "function": {"name": name, "arguments": text},
    }


def tool_names(tools: list[dict[str, Any]] | None) -> set[str]:
    return {
        str(tool.get("function", {}).get("name"))
        for tool in tools or []
        if isinstance(tool, dict) and tool.get("function", {}).get("name")
    }
