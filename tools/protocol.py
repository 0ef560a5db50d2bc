"""The Tool protocol: what every backend (proxy, emulated, python, container) must provide.

Tools receive everything episode-specific through a ToolContext, so a tool never reaches for
globals and never starts containers itself: environments are injected by the runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from scenarios.model import Scenario
from scenarios.records import Naming, RiskLabel


@dataclass
class ToolContext:
    episode_id: str
    scenario: Scenario | None
    naming: Naming
    # Episode-scoped mutable state shared by the episode's tools (call counters, world state).
    state: dict[str, Any] = field(default_factory=dict)
    # Execution environments opened by the runtime, by name (dependency injection).
    environments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolOutput:
    ok: bool
    output: str
    data: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Tool(Protocol):
    @property
    def name(self) -> str:
        """The name the agent sees (depends on the naming variant for misaligned tools)."""
        ...

    @property
    def tool_id(self) -> str:
        """The scenario's canonical tool name, identical across naming variants."""
        ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]: ...

    @property
    def risk(self) -> RiskLabel: ...

    @property
    def max_calls(self) -> int | None: ...

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput: ...


def function_schema(tool: Tool) -> dict[str, Any]:
    """The OpenAI function-calling schema, the lingua franca litellm translates for providers."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }
