"""What a Python-emulated toolkit is written with, in one import (the shipped toolkits use it).

The machinery lives in one module per job:

- `decorator`: `@tool` and ToolOptions (which methods are tools, their risk and call limit);
- `docstrings`: Google-style docstrings read with docstring_parser (summary, Args, Returns,
  Raises);
- `signatures`: parameter types from annotations, via pydantic's JSON schema generation;
- `spec`: one method as a ToolDef, combining the two;
- `toolkit`: the PythonToolkit base class, checked when a subclass is defined, and PythonTool
  (one method as a Tool), ToolError and the episode's world;
- `registry`: registering toolkits by name and loading `propensity.tools` entry points.
"""

from __future__ import annotations

from tools.python_emulators.decorator import ToolOptions, tool
from tools.python_emulators.registry import (
    ENTRY_POINT_GROUP,
    EntryPointProblem,
    load_entry_points,
    python_toolkits,
    register_toolkit,
    unregister_toolkit,
)
from tools.python_emulators.toolkit import WORLD_KEY, PythonTool, PythonToolkit, ToolError

__all__ = [
    "ENTRY_POINT_GROUP",
    "WORLD_KEY",
    "EntryPointProblem",
    "PythonTool",
    "PythonToolkit",
    "ToolError",
    "ToolOptions",
    "load_entry_points",
    "python_toolkits",
    "register_toolkit",
    "tool",
    "unregister_toolkit",
]
