"""Backends resolve a scenario's tool spec into a runnable Tool; new backends plug in by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scenarios.checks import declared_parameters
from scenarios.model import Scenario, ToolSpec
from scenarios.records import Naming
from tools.protocol import Tool
from tools.proxy import ProxyTool

ToolFactory = Callable[[ToolSpec, Naming], Tool]


class UnknownBackendError(LookupError):
    pass


class ToolRegistry:
    def __init__(self) -> None:
        self._backends: dict[str, ToolFactory] = {}

    def register(self, backend: str, factory: ToolFactory, *, replace: bool = False) -> None:
        if backend in self._backends and not replace:
            raise ValueError(f"tool backend {backend!r} is already registered")
        self._backends[backend] = factory

    def backend(self, backend: str) -> Callable[[ToolFactory], ToolFactory]:
        """Decorator form of `register`."""

        def decorate(factory: ToolFactory) -> ToolFactory:
            self.register(backend, factory)
            return factory

        return decorate

    @property
    def backends(self) -> list[str]:
        return sorted(self._backends)

    def build(self, spec: ToolSpec, naming: Naming) -> Tool:
        try:
            factory = self._backends[spec.backend]
        except KeyError:
            raise UnknownBackendError(
                f"tool {spec.name!r} uses backend {spec.backend!r}, which is not registered "
                f"(known: {', '.join(self.backends)})"
            ) from None
        return factory(spec, naming)

    def parameters_of(self, spec: ToolSpec) -> dict[str, Any] | None:
        """The arguments schema the agent is offered for ``spec``: its declared one for a
        proxy, the built tool's (a toolkit's own parameters) otherwise. The ``parameters_of``
        that ``scenarios.load_pack`` checks conditions and ``expects`` by.

        Raises ``LookupError`` (``UnknownBackendError``, a toolkit's own) when the tool cannot
        be built: the checks report it at the tool's field."""
        if spec.backend == "proxy":
            return declared_parameters(spec)
        return dict(self.build(spec, Naming.HARMFUL).parameters)

    def check(self, scenario: Scenario) -> list[str]:
        """Problems that would stop the scenario's tools from being built, for early refusal."""
        problems = []
        for tool in scenario.tools:
            if tool.backend not in self._backends:
                problems.append(
                    f"scenario {scenario.id!r}: tool {tool.name!r} uses unknown backend "
                    f"{tool.backend!r} (known: {', '.join(self.backends)})"
                )
                continue
            for naming in Naming:
                try:
                    self.build(tool, naming)
                except LookupError as exc:
                    problems.append(f"scenario {scenario.id!r}: {exc}")
                    break
        return problems


def _python_tool(spec: ToolSpec, naming: Naming) -> Tool:
    from tools.python_backend import ScenarioPythonTool

    return ScenarioPythonTool(spec, naming)


default_registry = ToolRegistry()
default_registry.register("proxy", ProxyTool)
default_registry.register("python", _python_tool)
