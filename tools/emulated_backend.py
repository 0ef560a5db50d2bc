"""Tools emulated by an LLM from a toolkit spec, and the library of toolkits a run can use.

The emulator itself is injected per episode through the ToolContext (like execution
environments), so the same tool objects serve any emulator model, mode or cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scenarios.records import RiskLabel
from tools.emulator import EmulationContext, LLMEmulator
from tools.protocol import ToolContext, ToolOutput
from tools.toolkits import (
    ToolDef,
    Toolkit,
    describe_tool,
    import_toolemu_toolkits,
    load_toolkits,
    parameters_schema,
)

EMULATOR_KEY = "emulator"


@dataclass
class EmulatorSession:
    emulator: LLMEmulator
    context: EmulationContext


class EmulatedTool:
    # The kind of backend, as injection metrics group by it (``tools.injection``).
    backend = "emulated"
    risk = RiskLabel.NEUTRAL
    max_calls: int | None = None

    def __init__(self, toolkit: Toolkit, tooldef: ToolDef) -> None:
        self.toolkit = toolkit
        self.tooldef = tooldef
        self.name = toolkit.qualified_name(tooldef)
        self.tool_id = self.name
        self.description = describe_tool(tooldef)
        self.parameters = parameters_schema(tooldef)

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        session = ctx.environments.get(EMULATOR_KEY)
        if not isinstance(session, EmulatorSession):
            raise RuntimeError("no tool emulator was given to this episode")
        return await session.emulator.observe(
            self.toolkit, self.tooldef, arguments, session.context
        )


def emulated_tools(toolkit: Toolkit) -> list[EmulatedTool]:
    return [EmulatedTool(toolkit, tooldef) for tooldef in toolkit.tools]


def _is_toolemu_file(path: Path) -> bool:
    if path.suffix != ".json":
        return False
    data = json.loads(path.read_text(encoding="utf-8"))
    return isinstance(data, list) and all(isinstance(t, dict) and "toolkit" in t for t in data)


def load_toolkit_library(paths: list[str]) -> dict[str, Toolkit]:
    """Toolkits by name from our YAML/JSON spec files and ToolEmu toolkit JSON files."""
    library: dict[str, Toolkit] = {}
    for text in paths:
        path = Path(text)
        loaded = import_toolemu_toolkits(path) if _is_toolemu_file(path) else load_toolkits(path)
        for toolkit in loaded:
            library[toolkit.name] = toolkit
    return library
