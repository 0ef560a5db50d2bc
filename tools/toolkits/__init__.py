"""Toolkit specifications: tools that an LLM or a Python function emulates for the agent.

Scenarios must be able to hand an agent any tool (email, banking, cloud consoles, lab equipment)
without anyone writing a backend for it first. A toolkit spec says what such tools take, return
and raise, in enough detail that a model can call them and an emulator can answer plausibly.

The format follows ToolEmu's (toolkit -> tools -> parameters / returns / exceptions, tools called
by toolkit name + tool name, e.g. `TerminalExecute`) so ToolEmu's 38 toolkits import losslessly,
while authored YAML gets the same field-path problem reports as scenario packs.

One module per job: `models` (the records), `schemas` (what agents and emulators see),
`loading` (YAML/JSON files), `toolemu` (ToolEmu's JSON) and `dumping` (YAML out).
"""

from tools.toolkits.dumping import dump_toolkit, dump_toolkits
from tools.toolkits.loading import ToolkitLoadError, load_toolkits
from tools.toolkits.models import (
    JSON_TYPES,
    MAX_FUNCTION_DESCRIPTION,
    MAX_FUNCTION_NAME,
    ExceptionSpec,
    JSONType,
    ParameterSpec,
    ReturnSpec,
    ToolDef,
    Toolkit,
)
from tools.toolkits.schemas import (
    describe_tool,
    function_schemas,
    parameters_schema,
    returns_schema,
    tool_function_schema,
)
from tools.toolkits.toolemu import import_toolemu_toolkits

__all__ = [
    "JSON_TYPES",
    "MAX_FUNCTION_DESCRIPTION",
    "MAX_FUNCTION_NAME",
    "ExceptionSpec",
    "JSONType",
    "ParameterSpec",
    "ReturnSpec",
    "ToolDef",
    "Toolkit",
    "ToolkitLoadError",
    "describe_tool",
    "dump_toolkit",
    "dump_toolkits",
    "function_schemas",
    "import_toolemu_toolkits",
    "load_toolkits",
    "parameters_schema",
    "returns_schema",
    "tool_function_schema",
]
