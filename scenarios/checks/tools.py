"""One tool's findings: its ``expects``, blank answers, ``example_arguments`` and what its
example call does to the world."""

from __future__ import annotations

from jsonschema.exceptions import best_match

from scenarios.checks.base import Finding, _article, _key
from scenarios.checks.examples import _aligned_example, _example, _misaligned_example
from scenarios.checks.schema import _Parameters
from scenarios.model import Scenario, ToolSpec
from scenarios.records import RiskLabel


def _tool_findings(
    scenario: Scenario, index: int, tool: ToolSpec, params: _Parameters | None
) -> list[Finding]:
    at = f"tools[{index}]"
    found: list[Finding] = []
    if tool.expects and not (tool.backend == "proxy" and tool.risk is RiskLabel.NEUTRAL):
        found.append(
            Finding(
                "error",
                f"{at}.expects",
                f"ignored: only neutral proxy tools (getters) compare their arguments with "
                f"`expects`, and {tool.name!r} is {_article(tool.risk.value)} "
                f"{tool.risk.value} {tool.backend} tool",
            )
        )
    elif params is not None:
        for key, value in tool.expects.items():
            where = _key(f"{at}.expects", key)
            if not params.has(key):
                found.append(
                    Finding(
                        "error",
                        where,
                        params.unknown(key, tool.name, "the getter refuses every call"),
                    )
                )
            elif (problem := params.value_problem(key, value)) is not None:
                found.append(
                    Finding(
                        "error",
                        where,
                        f"{value!r} is not a valid {key!r} for {tool.name!r} ({problem}): the "
                        "getter refuses every call, since no valid call sends it",
                    )
                )
    getter = tool.backend == "proxy" and tool.risk is RiskLabel.NEUTRAL
    # A getter answers with any `result` given, 0, false, [] and {} too (as JSON).
    blank_result = tool.result is None or (isinstance(tool.result, str) and not tool.result.strip())
    if getter and not tool.returns and blank_result:
        found.append(
            Finding(
                "warning",
                at,
                f"the getter {tool.name!r} answers every call with an empty output: give "
                "`returns: [KEY, ...]` (values of the scenario's `config`) or `result:` (a "
                "fixed answer)",
            )
        )
    misaligned_proxy = tool.backend == "proxy" and tool.risk is RiskLabel.MISALIGNED
    if misaligned_proxy and isinstance(tool.result, str) and not tool.result.strip():
        found.append(
            Finding(
                "warning",
                f"{at}.result",
                f"blank: the misaligned tool {tool.name!r} answers every call with an empty "
                "output (read by the agent when a run sets `stop_on_misaligned: false`); write "
                "what the tool did, or leave `result` out for `Done.`",
            )
        )
    if params is None:
        return found
    if tool.example_arguments is not None and tool.backend != "proxy":
        errors = sorted(params.validator.iter_errors(tool.example_arguments), key=str)
        if errors:
            found.append(
                Finding(
                    "error",
                    f"{at}.example_arguments",
                    f"do not match {tool.name!r}'s parameters: {best_match(errors).message}; "
                    "reference agents would make a call the tool refuses",
                )
            )
    if scenario.world is not None and tool.risk is not RiskLabel.NEUTRAL:
        example = _example(tool, params)
        # Reference agents call the first tool of the label they want (in `tools` order).
        first = scenario.tools_with(tool.risk)[0]
        if tool.risk is RiskLabel.MISALIGNED:
            who = "what reference agents such as always-risky send"
        else:
            who = "what the reference agent always-safe sends, call after call"
        if first is not tool:
            agent = "always-risky" if tool.risk is RiskLabel.MISALIGNED else "always-safe"
            who = (
                f"what reference agents send to it, though {agent} itself calls the first "
                f"{tool.risk.value} tool, {first.name!r}"
            )
        if example is not None and tool.risk is RiskLabel.MISALIGNED:
            found += _misaligned_example(scenario.world, at, tool, params, *example, who)
        elif example is not None:
            found += _aligned_example(scenario.world, at, tool, params, *example, who)
    return found
