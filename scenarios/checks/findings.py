"""The driver: every finding about one scenario, errors first."""

from __future__ import annotations

from scenarios.checks.base import (
    Finding,
    ParametersOf,
    ToolkitTools,
    _key,
    declared_parameters,
)
from scenarios.checks.conditions import _transition_findings
from scenarios.checks.fields import _ignored_scenario_fields, _ignored_tool_fields
from scenarios.checks.injections import _injection_findings
from scenarios.checks.pressure import _pressure_findings
from scenarios.checks.schema import _Parameters
from scenarios.checks.toolkits import (
    _missing_toolkits,
    _open_toolkit_tools,
    _unknown_tool,
    _worlds_findings,
)
from scenarios.checks.tools import _tool_findings
from scenarios.model import Scenario
from scenarios.records import RiskLabel


def scenario_findings(
    scenario: Scenario,
    parameters_of: ParametersOf = declared_parameters,
    toolkits: ToolkitTools | None = None,
) -> list[Finding]:
    """Every finding about ``scenario``: its pressure messages, its ``worlds``, its tools'
    ``expects`` and example calls, its world's tools and conditions, and the world graph's
    warnings; errors first, then warnings, each in document order. ``toolkits``: the specs of
    the open scenario's toolkits, where loaded (a world naming their tools is checked against
    them; without them, a warning says what was not checked)."""
    findings = _pressure_findings(scenario)
    findings += _worlds_findings(scenario)
    findings += _missing_toolkits(scenario, toolkits)
    findings += _ignored_scenario_fields(scenario)
    by_name = {tool.name: tool for tool in scenario.tools}
    known: dict[str, _Parameters | None] = {}
    never_taken: dict[int, str] = {}
    unmatched: set[int] = set()  # never taken because no call even matches them
    for index, tool in enumerate(scenario.tools):
        findings += _ignored_tool_fields(index, tool)
        try:
            known[tool.name] = _Parameters.of(tool, parameters_of)
        except LookupError as exc:
            where = "toolkit" if tool.toolkit else "backend"
            findings.append(Finding("error", f"tools[{index}].{where}", str(exc).strip("'\"")))
            known[tool.name] = None
            continue
        findings += _tool_findings(scenario, index, tool, known[tool.name])
    findings += _injection_findings(scenario, toolkits, known)
    if scenario.world is not None:
        kit_tools, all_loaded, notes = _open_toolkit_tools(scenario, toolkits)
        findings += notes
        offered = sorted({*by_name, *kit_tools})
        for index, transition in enumerate(scenario.world.transitions):
            spec = by_name.get(transition.tool)
            if spec is not None:
                params = known[spec.name]
                always_fails = spec.backend == "proxy" and spec.risk is RiskLabel.ALIGNED
            elif transition.tool in kit_tools:
                params, always_fails = kit_tools[transition.tool], False
            elif all_loaded:
                never_taken[index] = f"no tool of the scenario is called {transition.tool!r}"
                unmatched.add(index)
                findings.append(
                    Finding(
                        "error",
                        f"world.transitions[{index}].tool",
                        f"{_unknown_tool(transition.tool, offered)}: the transition is never taken",
                    )
                )
                continue
            else:
                continue  # a tool of a toolkit whose spec was not given (said in `notes`)
            found, dead = _transition_findings(
                index, transition, transition.tool, params, always_fails=always_fails
            )
            findings += found
            if dead is not None:
                never_taken[index] = dead
            if any(finding.severity == "error" for finding in found):
                unmatched.add(index)
        if all_loaded:
            findings += [
                Finding(
                    "error",
                    _key("world.gates", tool),
                    f"{_unknown_tool(tool, offered)}: the gate never applies",
                )
                for tool in scenario.world.gates
                if tool not in by_name and tool not in kit_tools
            ]
        findings += [
            Finding("warning", f"world.{where}", message)
            for where, message in scenario.world.warnings(never_taken, unmatched)
        ]
    return sorted(findings, key=lambda f: f.severity != "error")
