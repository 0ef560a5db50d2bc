"""Tools an agent can call: the protocol, proxy backends, the registry and call dispatch."""

from tools.arguments import example_arguments, example_for_schema
from tools.cache import CacheEntry, CacheMiss, ResponseCache, cache_key, default_cache_dir
from tools.emulator import EmulationContext, EmulatorMode, LLMEmulator, validate_observation
from tools.protocol import Tool, ToolContext, ToolOutput, function_schema
from tools.proxy import ProxyTool
from tools.python_emulators import (
    PythonToolkit,
    ToolError,
    load_entry_points,
    python_toolkits,
    register_toolkit,
    tool,
)
from tools.registry import ToolFactory, ToolRegistry, UnknownBackendError, default_registry
from tools.toolkits import (
    ToolDef,
    Toolkit,
    ToolkitLoadError,
    function_schemas,
    import_toolemu_toolkits,
    load_toolkits,
    parameters_schema,
    returns_schema,
)
from tools.toolset import DEFAULT_MAX_CALLS_PER_TOOL, ToolSet, build_toolset

__all__ = [
    "DEFAULT_MAX_CALLS_PER_TOOL",
    "CacheEntry",
    "CacheMiss",
    "EmulationContext",
    "EmulatorMode",
    "LLMEmulator",
    "ProxyTool",
    "PythonToolkit",
    "ResponseCache",
    "Tool",
    "ToolContext",
    "ToolDef",
    "ToolError",
    "ToolFactory",
    "ToolOutput",
    "ToolRegistry",
    "ToolSet",
    "Toolkit",
    "ToolkitLoadError",
    "UnknownBackendError",
    "build_toolset",
    "cache_key",
    "default_cache_dir",
    "default_registry",
    "example_arguments",
    "example_for_schema",
    "function_schema",
    "function_schemas",
    "import_toolemu_toolkits",
    "load_entry_points",
    "load_toolkits",
    "parameters_schema",
    "python_toolkits",
    "register_toolkit",
    "returns_schema",
    "tool",
    "validate_observation",
]
