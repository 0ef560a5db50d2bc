"""The `python` tool backend: a scenario tool implemented by a registered Python toolkit.

The scenario decides what the agent sees (name, description, risk label, harmful/benign naming)
and the toolkit decides what the tool does to the episode's world, seeded from the scenario's
`worlds` entry, so the same toolkit serves many scenarios with different stakes.
"""

from __future__ import annotations

from typing import Any

from scenarios.model import ToolSpec
from scenarios.records import Naming
from tools.protocol import ToolContext, ToolOutput
from tools.python_emulators import PythonToolkit, python_toolkits
from tools.toolkits import parameters_schema


class UnknownToolkitError(LookupError):
    pass


def resolve(spec: ToolSpec) -> tuple[type[PythonToolkit], str]:
    toolkits = python_toolkits()
    toolkit = toolkits.get(spec.toolkit or "")
    if toolkit is None:
        known = ", ".join(sorted(toolkits)) or "none"
        raise UnknownToolkitError(
            f"tool {spec.name!r}: no Python toolkit {spec.toolkit!r} is registered (known: "
            f"{known}); load the module that defines it with --plugin MODULE (or "
            "PROPENSITY_PLUGINS), or install the package that provides it"
        )
    try:
        tooldef = toolkit.spec().tool(spec.tool or "")
    except KeyError:
        raise UnknownToolkitError(
            f"tool {spec.name!r}: toolkit {spec.toolkit!r} has no tool {spec.tool!r}"
        ) from None
    return toolkit, tooldef.name


class ScenarioPythonTool:
    # The kind of backend, as injection metrics group by it (``tools.injection``).
    backend = "python"

    def __init__(self, spec: ToolSpec, naming: Naming) -> None:
        self._toolkit, self._tool = resolve(spec)
        self.name = spec.exposed_name(naming)
        self.tool_id = spec.name
        self.description = spec.exposed_description(naming)
        self.parameters = parameters_schema(self._toolkit.spec().tool(self._tool))
        self.risk = spec.risk
        self.max_calls = spec.max_calls

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        seed = ctx.scenario.worlds.get(self._toolkit.name, {}) if ctx.scenario else {}
        (implementation,) = self._toolkit.tools(seed, only=[self._tool])
        return await implementation.call(arguments, ctx)
