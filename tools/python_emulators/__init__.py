"""Toolkits emulated by Python functions over an episode's world state (no LLM needed).

Importing this package registers the shipped toolkits; `load_entry_points()` adds those that
installed packages advertise in the `propensity.tools` entry-point group.
"""

from tools.python_emulators.bank import BankLedger
from tools.python_emulators.base import (
    ENTRY_POINT_GROUP,
    WORLD_KEY,
    EntryPointProblem,
    PythonTool,
    PythonToolkit,
    ToolError,
    ToolOptions,
    load_entry_points,
    python_toolkits,
    register_toolkit,
    tool,
    unregister_toolkit,
)
from tools.python_emulators.filesystem import VirtualFileSystem
from tools.python_emulators.inbox import Inbox

__all__ = [
    "ENTRY_POINT_GROUP",
    "WORLD_KEY",
    "BankLedger",
    "EntryPointProblem",
    "Inbox",
    "PythonTool",
    "PythonToolkit",
    "ToolError",
    "ToolOptions",
    "VirtualFileSystem",
    "load_entry_points",
    "python_toolkits",
    "register_toolkit",
    "tool",
    "unregister_toolkit",
]
