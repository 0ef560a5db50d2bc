"""Dispatching an agent's tool calls: the harness-side guarantees every backend gets for free.

Whatever the backend, an unknown tool name, malformed or schema-violating arguments, an exceeded
call limit or a hung tool produce an error *result* the agent can read and recover from, never
an exception that would end the episode as if it were an infrastructure failure.
"""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from typing import Any

from jsonschema.exceptions import best_match

from scenarios.model import Scenario
from scenarios.records import Naming, ToolCall, ToolErrorKind, ToolResult
from scenarios.schemas import bounded_validator
from tools.injection import Injector
from tools.protocol import Tool, ToolContext, function_schema
from tools.registry import ToolRegistry, default_registry

DEFAULT_MAX_CALLS_PER_TOOL = 25


@lru_cache(maxsize=4096)
def _compiled(schema_json: str) -> Any:
    return bounded_validator(json.loads(schema_json))


def _validator(schema: dict[str, Any]) -> Any:
    """Validators are built once per distinct schema: building one costs more than a tool call,
    and every episode of a suite offers the same few schemas."""
    return _compiled(json.dumps(schema, sort_keys=True))


class ToolSet:
    def __init__(
        self,
        tools: list[Tool],
        *,
        call_timeout_s: float = 60.0,
        default_max_calls: int | None = DEFAULT_MAX_CALLS_PER_TOOL,
        injector: Injector | None = None,
    ) -> None:
        """``injector`` plants an injection into the output of its due call (an attacked
        episode; :mod:`tools.injection`)."""
        self.injector = injector
        self._tools = {tool.name: tool for tool in tools}
        self._validators = {tool.name: _validator(tool.parameters) for tool in tools}
        self._schemas = [function_schema(tool) for tool in tools]
        self._call_counts: dict[str, int] = {}
        self.call_timeout_s = call_timeout_s
        self.default_max_calls = default_max_calls

    @property
    def tools(self) -> list[Tool]:
        return list(self._tools.values())

    def schemas(self) -> list[dict[str, Any]]:
        return self._schemas

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def _error(
        self, call: ToolCall, kind: ToolErrorKind, text: str, tool: Tool | None
    ) -> ToolResult:
        return ToolResult(
            call_id=call.id,
            name=call.name,
            ok=False,
            output=text,
            error_kind=kind,
            risk=tool.risk if tool else None,
            tool_id=tool.tool_id if tool else None,
        )

    async def execute(self, call: ToolCall, ctx: ToolContext) -> ToolResult:
        tool = self._tools.get(call.name)
        if tool is None:
            available = ", ".join(sorted(self._tools))
            return self._error(
                call,
                ToolErrorKind.UNKNOWN_TOOL,
                f"Error: there is no tool named {call.name!r}. Available tools: {available}.",
                None,
            )
        if call.raw_arguments is not None:
            return self._error(
                call,
                ToolErrorKind.BAD_ARGUMENTS,
                "Error: the arguments were not a valid JSON object "
                f"({call.raw_arguments[:200]!r}). Call the tool again with a JSON object "
                "that matches its parameters schema.",
                tool,
            )
        validator = self._validators[tool.name]
        # is_valid first: the common, valid case then skips building error objects.
        violation = (
            None
            if validator.is_valid(call.arguments)
            else best_match(validator.iter_errors(call.arguments))
        )
        if violation is not None:
            where = "/".join(str(p) for p in violation.absolute_path) or "arguments"
            return self._error(
                call,
                ToolErrorKind.BAD_ARGUMENTS,
                f"Error: invalid arguments for {tool.name} at {where}: {violation.message}.",
                tool,
            )
        limit = tool.max_calls if tool.max_calls is not None else self.default_max_calls
        count = self._call_counts.get(tool.name, 0) + 1
        self._call_counts[tool.name] = count
        if limit is not None and count > limit:
            return self._error(
                call,
                ToolErrorKind.CALL_LIMIT,
                f"Error: {tool.name} may be called at most {limit} times in this task.",
                tool,
            )
        injector = self.injector
        attacked = injector is not None and injector.due(tool, call.arguments)
        if attacked and injector is not None:
            injector.before(ctx)
        try:
            async with asyncio.timeout(self.call_timeout_s):
                outcome = await tool.call(call.arguments, ctx)
            if attacked and injector is not None:
                outcome = injector.plant(tool, outcome, ctx)
        except TimeoutError:
            if attacked and injector is not None:
                injector.cancel(ctx)  # nothing reached the agent: the attack was not delivered
            return self._error(
                call,
                ToolErrorKind.TIMEOUT,
                f"Error: {tool.name} did not answer within {self.call_timeout_s:g} s.",
                tool,
            )
        return ToolResult(
            call_id=call.id,
            name=call.name,
            ok=outcome.ok,
            output=outcome.output,
            error_kind=None if outcome.ok else ToolErrorKind.TOOL_ERROR,
            risk=tool.risk,
            tool_id=tool.tool_id,
            data=outcome.data,
        )


def build_toolset(
    scenario: Scenario,
    naming: Naming,
    *,
    registry: ToolRegistry = default_registry,
    call_timeout_s: float = 60.0,
    default_max_calls: int | None = DEFAULT_MAX_CALLS_PER_TOOL,
) -> ToolSet:
    tools = [registry.build(spec, naming) for spec in scenario.tools]
    return ToolSet(tools, call_timeout_s=call_timeout_s, default_max_calls=default_max_calls)
