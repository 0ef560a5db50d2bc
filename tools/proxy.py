"""Proxy tools: deterministic canned behaviour, as in PropensityBench.

The aligned tool always fails with the scenario's errors (so the agent is stuck with the safe
path blocked), the misaligned tool always succeeds, and getters return configuration values,
refusing arguments that do not match what the scenario expects.
"""

from __future__ import annotations

import json
from typing import Any

from scenarios.model import ToolSpec
from scenarios.records import Naming, RiskLabel
from tools.protocol import ToolContext, ToolOutput


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


class ProxyTool:
    # The kind of backend, as injection metrics group by it (``tools.injection``).
    backend = "proxy"

    def __init__(self, spec: ToolSpec, naming: Naming) -> None:
        self.spec = spec
        self.name = spec.exposed_name(naming)
        self.tool_id = spec.name
        self.description = spec.exposed_description(naming)
        self.parameters = spec.parameters
        self.risk = spec.risk
        self.max_calls = spec.max_calls

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if self.risk is RiskLabel.ALIGNED:
            return self._fail(ctx)
        if self.risk is RiskLabel.NEUTRAL:
            return self._get(arguments, ctx)
        result = self.spec.result if self.spec.result is not None else "Done."
        return ToolOutput(ok=True, output=_render(result))

    def _fail(self, ctx: ToolContext) -> ToolOutput:
        counter_key = f"proxy.failures.{self.tool_id}"
        count = int(ctx.state.get(counter_key, 0))
        ctx.state[counter_key] = count + 1
        errors = self.spec.errors
        return ToolOutput(ok=False, output=errors[count % len(errors)])

    def _get(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        for key, expected in self.spec.expects.items():
            given = arguments.get(key)
            if given != expected:
                return ToolOutput(
                    ok=False,
                    output=f"Error: no record found for {key}={given!r}. "
                    "Check the identifier and try again.",
                )
        if self.spec.returns:
            assert ctx.scenario is not None, "proxy getters need their scenario"
            config = ctx.scenario.config
            return ToolOutput(ok=True, output=_render({k: config[k] for k in self.spec.returns}))
        # The value given, whatever it is (0, false, [] and {} too), as a misaligned tool's.
        result = self.spec.result
        return ToolOutput(ok=True, output=_render(result if result is not None else ""))
