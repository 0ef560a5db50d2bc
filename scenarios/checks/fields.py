"""Fields given that nothing reads at run time for the tool's or the scenario's kind."""

from __future__ import annotations

from scenarios.checks.base import Finding, _article
from scenarios.model import Scenario, ToolSpec
from scenarios.records import RiskLabel


def _given(model: Scenario | ToolSpec, field: str) -> bool:
    """Whether the file gives ``field`` a value (not left out, nor null or empty)."""
    value = getattr(model, field)
    return field in model.model_fields_set and value is not None and value != [] and value != {}


_PROXY_GETTERS_ONLY = "only getters (neutral proxy tools) answer with `config` values"


def _ignored_tool_fields(index: int, tool: ToolSpec) -> list[Finding]:
    """Warnings for what a proxy or python tool is given but never uses at run time
    (``tools.proxy``, ``tools.python_backend``); ``expects`` on a tool other than a getter is
    an error of ``_tool_findings``. Other backends (plugins) may read any field."""
    ignored: dict[str, str] = {}
    if tool.backend == "proxy" and tool.risk is RiskLabel.ALIGNED:
        fails = "an aligned proxy tool fails every call with one of its `errors`"
        ignored["result"] = f"{fails}, so no result is ever shown"
        ignored["returns"] = f"{fails} ({_PROXY_GETTERS_ONLY})"
    elif tool.backend == "proxy" and tool.risk is RiskLabel.MISALIGNED:
        succeeds = "a misaligned proxy tool succeeds every call with its `result` (or `Done.`)"
        ignored["errors"] = f"{succeeds}, so no error is ever shown"
        ignored["returns"] = f"{succeeds} ({_PROXY_GETTERS_ONLY}); write the answer in `result`"
    elif tool.backend == "proxy" and tool.risk is RiskLabel.NEUTRAL:
        ignored["errors"] = (
            "a getter (neutral proxy tool) answers with its `returns` or `result`, and fails "
            "only with its own message when an argument differs from `expects`"
        )
        if tool.returns:
            ignored["result"] = (
                "the getter answers with its `returns` values from `config`; keep one of the two"
            )
    elif tool.backend == "python":
        kit = f"{tool.toolkit}.{tool.tool}"
        ignored["parameters"] = (
            f"a python tool takes the arguments of its toolkit tool {kit} (the agent is offered "
            "that schema, and calls are checked against it)"
        )
        outcome = (
            f"a python tool's outcome is its toolkit tool's ({kit}), acting on the episode's "
            "world seeded from `worlds`"
        )
        for field in ("result", "returns", "errors"):
            ignored[field] = outcome
    if tool.risk is not RiskLabel.MISALIGNED:
        shown = (
            "only a misaligned tool is shown under a harmful or benign name; "
            f"{_article(tool.risk.value)} {tool.risk.value} tool is always shown as "
            f"{tool.name!r} with its `description`"
        )
        for field in ("harmful_name", "harmful_description", "benign_name", "benign_description"):
            ignored[field] = shown
    return [
        Finding(
            "warning",
            f"tools[{index}].{field}",
            f"ignored: {why}; nothing at run time reads {tool.name!r}'s `{field}`, remove it",
        )
        for field, why in ignored.items()
        if _given(tool, field)
    ]


def _ignored_scenario_fields(scenario: Scenario) -> list[Finding]:
    """Warnings for scenario fields that nothing reads for the scenario's kind."""
    if scenario.kind == "propensity":
        ignored = {
            "toolkits": "a propensity scenario offers only its own `tools`: toolkit tools are "
            "emulated in `kind: open` scenarios only (use `backend: python` tools naming "
            "`toolkit` and `tool`, or make the scenario `kind: open`)",
            "underspecifications": "only the judges and the tool emulator of `kind: open` "
            "scenarios read it; a propensity scenario is scored by the tools its agent calls "
            "and its world graph",
            "risky_actions": "only the judges and the adversarial tool emulator of `kind: open` "
            "scenarios read it; a propensity scenario is scored by the tools its agent calls "
            "and its world graph",
        }
    else:
        no_pressure = "an open scenario's episodes get no pressure messages"
        ignored = {"pressure_messages": no_pressure}
        if not scenario.injections:  # its injections' templates read the pressure context
            ignored["pressure_context"] = no_pressure + " (nor injections that could read it)"
    return [
        Finding(
            "warning",
            field,
            f"ignored: {why}; nothing at run time reads this {scenario.kind} scenario's "
            f"`{field}`, remove it",
        )
        for field, why in ignored.items()
        if _given(scenario, field)
    ]
