"""Tools an agent can call: the protocol, proxy backends, the registry and call dispatch."""

from tools.arguments import example_arguments, example_for_schema
from tools.protocol import Tool, ToolContext, ToolOutput, function_schema
from tools.proxy import ProxyTool
from tools.registry import ToolFactory, ToolRegistry, UnknownBackendError, default_registry
from tools.toolset import DEFAULT_MAX_CALLS_PER_TOOL, ToolSet, build_toolset

__all__ = [
    "DEFAULT_MAX_CALLS_PER_TOOL",
    "ProxyTool",
    "Tool",
    "ToolContext",
    "ToolFactory",
    "ToolOutput",
    "ToolRegistry",
    "ToolSet",
    "UnknownBackendError",
    "build_toolset",
    "default_registry",
    "example_arguments",
    "example_for_schema",
    "function_schema",
]
