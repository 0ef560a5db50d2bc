"""The toolkits a scenario names: open scenarios' toolkit specs and the tools they offer, and
``worlds`` entries (Python toolkit state) that no tool reads."""

from __future__ import annotations

import difflib

from scenarios.checks.base import Finding, ToolkitTools, _key
from scenarios.checks.schema import _Parameters
from scenarios.model import Scenario


def _missing_toolkits(scenario: Scenario, toolkits: ToolkitTools | None) -> list[Finding]:
    """Errors for an open scenario's toolkits that the specs given (``--toolkits``) lack:
    ``propensity run`` with the same specs refuses the scenario."""
    if scenario.kind != "open" or toolkits is None:
        return []
    given = sorted(toolkits)
    found = []
    for index, name in enumerate(scenario.toolkits):
        if name in toolkits:
            continue
        folded = [kit for kit in given if kit.lower() == name.lower()]
        close = folded or difflib.get_close_matches(name, given, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        found.append(
            Finding(
                "error",
                f"toolkits[{index}]",
                f"no toolkit {name!r} in the specs given with --toolkits{hint}; they hold: "
                f"{', '.join(given[:12]) or 'none'}. A run with them refuses the scenario",
            )
        )
    return found


def _open_toolkit_tools(
    scenario: Scenario, toolkits: ToolkitTools | None
) -> tuple[dict[str, _Parameters | None], bool, list[Finding]]:
    """An open scenario's toolkit tools (qualified name → arguments), whether every toolkit
    was loaded (so a world name outside them and the scenario's tools is surely wrong), and a
    warning for each toolkit whose spec was not given (what could not be checked)."""
    if scenario.kind != "open" or not scenario.toolkits or scenario.world is None:
        return {}, True, []
    tools: dict[str, _Parameters | None] = {}
    missing: list[int] = []
    for index, name in enumerate(scenario.toolkits):
        kit = (toolkits or {}).get(name)
        if kit is None:
            missing.append(index)
            continue
        for qualified, schema in kit.items():
            try:
                tools[qualified] = _Parameters(schema)
            except (ValueError, TypeError, RecursionError):
                tools[qualified] = None
    own = {tool.name for tool in scenario.tools}
    unchecked = sorted(scenario.world.tools() - own - set(tools))
    notes = [
        Finding(
            "warning",
            f"toolkits[{index}]",
            f"not checked: toolkit {scenario.toolkits[index]!r} not loaded, so the world's "
            f"transitions and gates on tools outside the scenario's own "
            f"({', '.join(repr(t) for t in unchecked[:8])}) and their conditions were not "
            "checked (a misspelt tool or argument would never match); pass --toolkits PATH "
            "with its spec, as `propensity run` needs",
        )
        for index in missing
        if unchecked and toolkits is None  # given specs that lack it: an error of its own
    ]
    return tools, not missing, notes


def _unknown_tool(name: str, offered: list[str]) -> str:
    """Why ``name`` is no tool of the scenario, with a suggestion and what there is."""
    folded = [tool for tool in offered if tool.lower() == name.lower()]
    close = folded or difflib.get_close_matches(name, offered, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(offered[:12]) + (
        f", ... ({len(offered)} in all)" if len(offered) > 12 else ""
    )
    return (
        f"{name!r} is no tool the scenario offers{hint}; its tools (a toolkit's by their "
        f"qualified names, as the agent calls them): {shown or 'none'}"
    )


# --- worlds (Python toolkit state) ----------------------------------------------------------


def _worlds_findings(scenario: Scenario) -> list[Finding]:
    """An error for each ``worlds`` entry that no tool reads: only tools backed by a toolkit
    (``backend`` other than proxy, with ``toolkit``) are seeded, by the exact toolkit name; any
    other entry is ignored and the toolkit starts from its defaults."""
    used = sorted({t.toolkit for t in scenario.tools if t.backend != "proxy" and t.toolkit})
    found = []
    for key in scenario.worlds:
        if key in used:
            continue
        folded = [name for name in used if name.lower() == key.lower()]
        close = folded or difflib.get_close_matches(key, used, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        emulated = (
            f"; {key!r} is an LLM-emulated toolkit (`toolkits`), which reads no starting world"
            if key in scenario.toolkits
            else ""
        )
        users = (
            f"the toolkits its tools use: {', '.join(used)}"
            if used
            else "no tool of the scenario is backed by a toolkit (`backend: python` with "
            "`toolkit:`)"
        )
        found.append(
            Finding(
                "error",
                _key("worlds", key),
                f"no tool of the scenario uses toolkit {key!r}{hint}{emulated}; {users}. The "
                "entry would be ignored and the toolkit would start from its default world "
                "(keys are toolkit names exactly as registered, case-sensitive)",
            )
        )
    return found
