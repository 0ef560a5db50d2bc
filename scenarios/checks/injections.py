"""Checks of a scenario's ``injections``: every tool they name is one the scenario offers, every
goal state is a harmful state of its world that a chain of transitions reaches, and every
placeholder of the template and instruction has a value (``propensity validate`` reports each
with its field, e.g. ``injections[1].goal.state``)."""

from __future__ import annotations

from collections.abc import Mapping

from scenarios.checks.base import Finding, ToolkitTools
from scenarios.checks.schema import _Parameters
from scenarios.checks.toolkits import _unknown_tool
from scenarios.injections import Injection, injection_fields
from scenarios.model import Scenario


def injection_context_fields(scenario: Scenario) -> set[str]:
    """The scenario values a template may name: its pressure context and role, and task."""
    return set(scenario.injection_context())


def _offered(scenario: Scenario, toolkits: ToolkitTools | None) -> tuple[set[str], bool]:
    """Names an injection may use (canonical tool names, and the loaded toolkits' qualified
    tool names: never a name one naming shows, which other episodes do not offer) and whether
    every toolkit was loaded."""
    names = {tool.name for tool in scenario.tools}
    loaded = True
    for kit in scenario.toolkits:
        tools = (toolkits or {}).get(kit)
        if tools is None:
            loaded = False
            continue
        names |= set(tools)
    return names, loaded


def _tool_finding(
    field: str, tool: str, offered: set[str], loaded: bool, what: str
) -> list[Finding]:
    if tool in offered:
        return []
    if not loaded:
        return [
            Finding(
                "warning",
                field,
                f"not checked: {tool!r} is no tool of the scenario's own, and its toolkits' "
                "specs were not given (pass --toolkits PATH)",
            )
        ]
    return [Finding("error", field, f"{_unknown_tool(tool, sorted(offered))}: {what}")]


def _one(
    scenario: Scenario, index: int, injection: Injection, offered: set[str], loaded: bool
) -> list[Finding]:
    at = f"injections[{index}]"
    found: list[Finding] = []
    if injection.at.place == "file":
        found.append(
            Finding(
                "error",
                f"{at}.at.place",
                "place: file plants a file in a code-interpreter sandbox: only code tasks have "
                "one (use append, prepend, field or inside on a tool's output)",
            )
        )
    elif injection.at.tool != "*":
        found += _tool_finding(
            f"{at}.at.tool", injection.at.tool, offered, loaded, "the injection is never planted"
        )
    goal = injection.goal
    if goal.call is not None:
        found += _tool_finding(
            f"{at}.goal.call.tool", goal.call.tool, offered, loaded, "the goal can never be reached"
        )
    if goal.code_outcome:
        found.append(
            Finding(
                "error",
                f"{at}.goal.code_outcome",
                "a code outcome is measured only in code tasks: give a forbidden `call` or a "
                "harmful world `state`",
            )
        )
    if goal.state is not None:
        graph = scenario.world_graph()
        harmful = {state.id for state in graph.harmful_states()} if graph else set()
        if graph is None:
            found.append(
                Finding(
                    "error",
                    f"{at}.goal.state",
                    f"the scenario has no world graph, so state {goal.state!r} can never be "
                    "reached (declare a `world`, or give a forbidden `call`)",
                )
            )
        elif goal.state not in harmful:
            kind = "is not harmful" if goal.state in {s.id for s in graph.states} else "is unknown"
            found.append(
                Finding(
                    "error",
                    f"{at}.goal.state",
                    f"world state {goal.state!r} {kind}: the goal must be one of the harmful "
                    f"states ({', '.join(sorted(harmful)) or 'none'})",
                )
            )
        elif goal.state not in graph.reachable_harmful_from(graph.initial.id):
            found.append(
                Finding(
                    "error",
                    f"{at}.goal.state",
                    f"no chain of transitions reaches {goal.state!r} from "
                    f"{graph.initial.id!r}: the goal can never be reached",
                )
            )
    in_text = "text" if injection.text is not None else "instruction"
    try:
        names = injection.placeholders()
    except ValueError as exc:
        return [*found, Finding("error", f"{at}.{in_text}", str(exc))]
    known = injection_context_fields(scenario) | set(injection.values) | {"instruction"}
    unknown = sorted(names - known)
    if unknown:
        from_text = injection.text is not None and set(unknown) & _names(injection.text)
        field = "text" if from_text else "instruction"
        found.append(
            Finding(
                "error",
                f"{at}.{field}",
                f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}: give "
                f"them in `values`, or use the scenario's ({', '.join(sorted(known))})",
            )
        )
    return found


def _names(text: str) -> set[str]:
    try:
        return injection_fields(text)
    except ValueError:
        return set()


def _argument_findings(
    field: str, tool: str, when: dict[str, object], params: Mapping[str, _Parameters | None]
) -> list[Finding]:
    """A `when` condition on an argument the tool does not take: no valid call meets it."""
    known = params.get(tool)
    if known is None:
        return []
    return [
        Finding("error", f"{field}.{name}", known.unknown(name, tool, "no valid call meets it"))
        for name in when
        if not known.has(name)
    ]


def _injection_findings(
    scenario: Scenario,
    toolkits: ToolkitTools | None,
    params: Mapping[str, _Parameters | None] | None = None,
) -> list[Finding]:
    """Every finding about ``scenario.injections`` (see the module docstring); ``params``:
    the scenario's tools' argument schemas, where known."""
    offered, loaded = _offered(scenario, toolkits)
    found: list[Finding] = []
    for index, injection in enumerate(scenario.injections):
        at = f"injections[{index}]"
        if injection.at.tool != "*":
            found += _argument_findings(
                f"{at}.at.when", injection.at.tool, injection.at.when, params or {}
            )
        if injection.goal.call is not None:
            found += _argument_findings(
                f"{at}.goal.call.when",
                injection.goal.call.tool,
                injection.goal.call.when,
                params or {},
            )
    seen: dict[str, int] = {}
    for index, injection in enumerate(scenario.injections):
        if injection.id in seen:
            found.append(
                Finding(
                    "error",
                    f"injections[{index}].id",
                    f"{injection.id!r} is already the id of injections[{seen[injection.id]}]",
                )
            )
        seen.setdefault(injection.id, index)
        found += _one(scenario, index, injection, offered, loaded)
    return found
