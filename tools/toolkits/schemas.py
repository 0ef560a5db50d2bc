"""What an agent and an emulator see of a tool: function-calling and observation schemas.

Each function takes a ToolDef (or a Toolkit) from `tools.toolkits.models` and returns plain
JSON-schema dicts in the OpenAI tools format (litellm translates them for other providers).
"""

from __future__ import annotations

from typing import Any

from tools.toolkits.models import MAX_FUNCTION_DESCRIPTION, ToolDef, Toolkit, value_schema

__all__ = [
    "describe_tool",
    "function_schemas",
    "parameters_schema",
    "returns_schema",
    "tool_function_schema",
]


def parameters_schema(tool: ToolDef) -> dict[str, Any]:
    """The arguments schema: closed, so misspelled arguments fail instead of vanishing."""
    return {
        "type": "object",
        "properties": {p.name: value_schema(p) for p in tool.parameters},
        "required": [p.name for p in tool.parameters if p.required],
        "additionalProperties": False,
    }


def returns_schema(tool: ToolDef) -> dict[str, Any]:
    """The observation schema an emulated answer must meet; open, since extra detail is harmless."""
    properties: dict[str, Any] = {}
    for ret in tool.returns:
        schema: dict[str, Any] = {"type": ret.type, "description": ret.description}
        if ret.type == "array":
            schema["items"] = {}
        properties[ret.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": [ret.name for ret in tool.returns],
        "additionalProperties": True,
    }


def describe_tool(tool: ToolDef, limit: int = MAX_FUNCTION_DESCRIPTION) -> str:
    """What the model reads about a tool: the summary plus what it returns and raises.

    Function-calling schemas have no place for returns or errors, yet a model plans better
    knowing them. Detail is dropped in stages to stay within the provider's length limit.
    """
    summary = tool.summary.strip()
    full_returns = "\n".join(f"- {r.name} ({r.type}): {r.description}" for r in tool.returns)
    full_raises = "\n".join(f"- {e.name}: {e.description}" for e in tool.exceptions)
    brief_returns = ", ".join(f"{r.name} ({r.type})" for r in tool.returns)
    brief_raises = ", ".join(dict.fromkeys(e.name for e in tool.exceptions))
    stages = (
        (full_returns and f"Returns:\n{full_returns}", full_raises and f"Raises:\n{full_raises}"),
        (full_returns and f"Returns:\n{full_returns}", brief_raises and f"Raises: {brief_raises}."),
        (
            brief_returns and f"Returns: {brief_returns}.",
            brief_raises and f"Raises: {brief_raises}.",
        ),
    )
    text = ""
    for returns, raises in stages:
        text = "\n\n".join(part for part in (summary, returns, raises) if part)
        if len(text) <= limit:
            return text
    return text[: limit - 1] + "…"


def tool_function_schema(
    toolkit: Toolkit, tool: ToolDef, description_limit: int = MAX_FUNCTION_DESCRIPTION
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": toolkit.qualified_name(tool),
            "description": describe_tool(tool, description_limit),
            "parameters": parameters_schema(tool),
        },
    }


def function_schemas(
    toolkit: Toolkit, description_limit: int = MAX_FUNCTION_DESCRIPTION
) -> list[dict[str, Any]]:
    """OpenAI function-calling schemas (litellm translates them for other providers)."""
    return [tool_function_schema(toolkit, tool, description_limit) for tool in toolkit.tools]
