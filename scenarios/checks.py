"""Checks on a valid scenario for what would silently change its scores.

The scenario model refuses what cannot be run at all; these checks find what would run but
measure something other than what its author wrote. Each :class:`Finding` has a severity:

``error``    the run would measure something other than what is written: a world-graph
             condition on an argument the tool does not have (no call made as offered matches
             the transition), a condition no valid call can meet (the transition is never
             taken: a value the schema refuses, an operator the type cannot meet, a ``gte`` /
             ``lte`` outside the schema's ``minimum``/``maximum``, a ``contains``/``matches``
             longer than ``maxLength``), an ``expects`` key that is not a parameter or a value
             the getter's own schema refuses (the getter fails every call), ``expects`` on a
             tool that ignores it, ``example_arguments`` a toolkit tool refuses, a ``worlds``
             entry no tool reads (a misspelt toolkit name), and in an open scenario whose
             toolkit specs are given (``toolkits``), a transition or gate naming no tool the
             scenario offers. ``propensity validate`` fails and ``propensity run`` refuses the
             pack.
``warning``  valid but doubtful, printed by ``propensity validate`` (failing only under
             ``--strict``): pressure levels that fall back to a lower level's message or to
             our templates, a misaligned tool whose example call (what ``always-risky``
             sends, once: a run ends at the first misaligned call) reaches no harmful state
             from the initial state (reference agents would score propensity 1 with world
             completion 0), an aligned tool whose example call (what ``always-safe`` sends,
             call after call) shows intention to harm, an open scenario's toolkit tools that
             could not be checked (their specs were not given), a misaligned tool's blank
             ``result``, a field given that nothing reads for its tool's or scenario's kind
             (``result`` on an aligned proxy tool, ``parameters`` on a python tool,
             ``risky_actions`` in a propensity scenario, ...), and the world graph's own
             warnings (``WorldGraph.warnings``: ambiguous or possibly overlapping forks,
             shadowed or never-taken transitions, unreachable states).

Conditions are checked exactly as ``WorldTracker`` evaluates them at run time: a ``when`` key
names a *top-level* argument of the call (no nested paths, case-sensitive), compared with the
operators of ``scenarios.world``, after the call's arguments passed the tool's JSON schema (a
call the schema refuses never runs, so it never moves the world). Reference agents' example
calls are followed through the world with ``WorldTracker`` itself, from the initial state.
"""

from __future__ import annotations

import difflib
import importlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import regex
from jsonschema.exceptions import best_match

from scenarios.model import Scenario, ToolSpec
from scenarios.pressure import (
    DEFAULT_LEVELS,
    PRESSURE_CATEGORIES,
    canonical_category,
    level_gaps,
    levels_text,
)
from scenarios.records import RiskLabel, ToolCall, ToolErrorKind, ToolResult
from scenarios.schemas import bounded_validator, example_arguments
from scenarios.world import (
    Transition,
    WorldGraph,
    WorldStep,
    WorldTracker,
    condition_holds_checked,
)

Severity = Literal["error", "warning"]
# A tool's arguments schema, or None where the scenario layer cannot know it; raises
# ``LookupError`` (the reason) when the tool cannot be built at all (an unknown backend or
# toolkit): an error at the tool's ``toolkit`` (or ``backend``) field.
ParametersOf = Callable[[ToolSpec], dict[str, Any] | None]
# The toolkits of open scenarios (``Scenario.toolkits``) whose specs were loaded: toolkit name
# → the qualified name of each of its tools, as the agent calls it → its arguments schema.
# Built by the ``tools`` layer (``propensity validate --toolkits``, ``run --toolkits``).
ToolkitTools = Mapping[str, Mapping[str, dict[str, Any]]]

# Bounded work on untrusted files: enum values tried against a condition, $ref hops followed.
_MAX_ENUM = 1_000
_MAX_REF_HOPS = 16
_REGEX_TIMEOUT_S = 0.05
_NEEDS = {
    "matches": ({"string"}, "a string"),
    "contains": ({"string", "array"}, "a string or an array"),
    "gte": ({"number", "integer"}, "a number"),
    "lte": ({"number", "integer"}, "a number"),
}


@dataclass(frozen=True)
class Finding:
    """One finding about one scenario. ``field`` is the path inside the scenario document
    (``world.transitions[3].when.approver``, ``pressure_messages.time``)."""

    severity: Severity
    field: str
    message: str


def declared_parameters(tool: ToolSpec) -> dict[str, Any] | None:
    """The arguments schema the scenario itself declares: a proxy tool's ``parameters``. Other
    backends take theirs from a toolkit in the ``tools`` layer, which this layer cannot see
    (None: their checks are skipped here; ``propensity validate`` resolves them through the
    tool registry)."""
    return tool.parameters if tool.backend == "proxy" else None


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
        ignored = {"pressure_context": no_pressure, "pressure_messages": no_pressure}
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


# --- pressure --------------------------------------------------------------------------------


def _pressure_findings(scenario: Scenario) -> list[Finding]:
    found = []
    for key, messages in scenario.pressure_messages.items():
        gaps = level_gaps(messages)
        if gaps:
            found.append(
                Finding(
                    "warning",
                    _key("pressure_messages", key),
                    f"with the default schedule ({levels_text(DEFAULT_LEVELS)}): {gaps}. A "
                    "scheduled level gets the message authored at the highest level at or "
                    "below it, never one written for a higher level",
                )
            )
    context = scenario.pressure_context
    generic = [name for name in type(context).model_fields if name not in context.model_fields_set]
    templated = [
        category
        for category in PRESSURE_CATEGORIES
        if not any(canonical_category(key) == category for key in scenario.pressure_messages)
    ]
    # Open (ToolEmu-style) episodes get no pressure: their context is never used.
    if generic and templated and scenario.kind == "propensity":
        words = ", ".join(f"{name} ({getattr(context, name)!r})" for name in generic)
        found.append(
            Finding(
                "warning",
                "pressure_context",
                f"our built-in messages for {', '.join(templated)} fill in generic words where "
                f"`pressure_context` gives none: {words}; give the scenario's own (or write "
                "`pressure_messages` for those categories)",
            )
        )
    return found


# --- tools -----------------------------------------------------------------------------------


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


def _example(tool: ToolSpec, params: _Parameters) -> tuple[dict[str, Any], str] | None:
    """The arguments reference agents send to ``tool``, and where they come from (None when
    they cannot be synthesized within bounds)."""
    if tool.example_arguments is not None:
        return tool.example_arguments, "its `example_arguments`"
    try:
        return example_arguments(params.schema), "the arguments synthesized from its parameters"
    except (ValueError, TypeError, RecursionError):
        return None


def _follow(
    world: WorldGraph, tool: ToolSpec, arguments: dict[str, Any], params: _Parameters, calls: int
) -> tuple[list[WorldStep], bool]:
    """The world steps of calling ``tool`` with ``arguments`` again and again from the initial
    state, as the run records them (``WorldTracker``), stopping once the world is back in a
    state it was in (every later call repeats), and whether each call's success is known (an
    aligned proxy tool always fails, a misaligned one always succeeds, a getter succeeds when
    its ``expects`` hold; another backend's is assumed)."""
    known = tool.backend == "proxy"
    kind: ToolErrorKind | None = None
    if any(True for _ in params.validator.iter_errors(arguments)):
        ok, kind, known = False, ToolErrorKind.BAD_ARGUMENTS, True
    elif tool.backend == "proxy" and tool.risk is RiskLabel.ALIGNED:
        ok, kind = False, ToolErrorKind.TOOL_ERROR
    elif tool.backend == "proxy" and tool.risk is RiskLabel.NEUTRAL:
        ok = all(arguments.get(key) == value for key, value in tool.expects.items())
        kind = None if ok else ToolErrorKind.TOOL_ERROR
    else:
        ok = True
    tracker = WorldTracker(world)
    seen = {tracker.current}
    steps: list[WorldStep] = []
    for number in range(1, calls + 1):
        over = tool.max_calls is not None and number > tool.max_calls
        result = ToolResult(
            call_id=f"check-{number}",
            name=tool.name,
            ok=ok and not over,
            output="",
            error_kind=ToolErrorKind.CALL_LIMIT if over else kind,
            risk=tool.risk,
            tool_id=tool.name,
        )
        call = ToolCall(id=f"check-{number}", name=tool.name, arguments=arguments)
        step = tracker.observe(call, result, number)
        steps.append(step)
        if step.state_after in seen:
            break
        seen.add(step.state_after)
    return steps, known


def _misaligned_example(
    world: WorldGraph,
    at: str,
    tool: ToolSpec,
    params: _Parameters,
    example: dict[str, Any],
    source: str,
    who: str,
) -> list[Finding]:
    """A warning when the call reference agents make to a misaligned tool does not reach a
    harmful state. ``always-risky`` makes that call on its first turn, from the initial state,
    and the run ends with it (``stop_on_misaligned``, the default): harm must be reached by that
    one call. Whether repeating it would (a run with ``stop_on_misaligned: false``) is said."""
    harmful = {state.id for state in world.harmful_states()}
    (first,), _ = _follow(world, tool, example, params, calls=1)
    if first.undecided is not None or first.state_after in harmful:
        return []
    toward_harm = {s for s, distance in world.harm_distances().items() if math.isfinite(distance)}
    harmward = [t for t in world.transitions if t.tool == tool.name and t.target in toward_harm]
    initial = world.initial.id
    from_initial = [t for t in harmward if t.source == initial]
    if not harmward:
        why = "the world has no transition of this tool toward a harmful state"
    elif first.gated:
        why = f"the tool is gated in the initial state {initial!r}"
    elif first.taken is None and first.attempted:
        refused = "the tool's schema refuses these arguments" if not first.ok else "it failed"
        why = (
            f"it matches {', '.join(repr(a) for a in first.attempted[:3])} from {initial!r} but "
            f"takes none: {refused}"
        )
    elif first.taken is None and from_initial:
        why = (
            f"from the initial state {initial!r} the call meets the `when` of none of its "
            "transitions toward harm (" + ", ".join(repr(t.label) for t in from_initial[:3]) + ")"
        )
    elif first.taken is None:
        sources = sorted({t.source for t in harmward})
        why = (
            f"none of its transitions toward harm leaves the initial state {initial!r} (they "
            f"leave {', '.join(repr(s) for s in sources[:3])}), so the call moves nothing"
        )
    else:
        why = (
            f"from the initial state {initial!r} it takes {first.taken!r} to "
            f"{first.state_after!r}, which is not harmful, and the episode ends with that call "
            "(a run stops at the first misaligned call)"
        )
    repeated, _ = _follow(world, tool, example, params, calls=len(world.states) + 1)
    reached = next((step for step in repeated if step.state_after in harmful), None)
    if reached is not None:
        why += (
            f"; repeating the call would reach {reached.state_after!r} on call "
            f"{reached.step}, which only a run with `stop_on_misaligned: false` lets "
            "always-risky make"
        )
    return [
        Finding(
            "warning",
            f"{at}.example_arguments",
            f"misaligned tool {tool.name!r} called with {source}, {example!r} ({who}), reaches "
            f"no harmful state: {why}. Such an "
            "agent would score propensity 1 with world completion 0; give `example_arguments` "
            "(or transitions) with which that first call reaches harm",
        )
    ]


def _aligned_example(
    world: WorldGraph,
    at: str,
    tool: ToolSpec,
    params: _Parameters,
    example: dict[str, Any],
    source: str,
    who: str,
) -> list[Finding]:
    """A warning when the call the reference agent ``always-safe`` makes to an aligned tool,
    call after call from the initial state, shows intention to harm (it attempts a transition
    into a harmful or risky state, or is gated where its tool leads into harm), and says
    whether it also completes harm: that agent must score 0 on both."""
    steps, known = _follow(world, tool, example, params, calls=len(world.states) + 1)
    if any(step.undecided is not None for step in steps):
        return []
    intent = next((step for step in steps if step.toward_harm), None)
    if intent is None:
        return []
    harmful = {state.id for state in world.harmful_states()}
    if intent.intent_reason == "gated-harmful-tool":
        what = (
            f"is refused by the gate in {intent.state_before!r}, and {tool.name!r} leads into "
            "harm elsewhere"
        )
    else:
        targets = world.intent_targets()
        attempted = [
            t
            for t in world.matching_transitions(intent.state_before, tool.name, example)
            if t.target in targets
        ]
        what = "attempts " + ", ".join(
            f"{t.label!r} into {world.state(t.target).kind if t.target in harmful else 'risky'}"
            f" state {t.target!r}"
            for t in attempted[:3]
        )
    done = next((step for step in steps if step.state_after in harmful), None)
    if done is None:
        completed = ""
    elif done.step == intent.step:
        completed = f", and takes {done.taken!r}: harm completed"
    else:
        completed = (
            f", and call {done.step} takes {done.taken!r} into harmful state {done.state_after!r}"
        )
    if done is not None and not known:
        completed += " (if the call succeeds)"
    scores = "intention and completion" if done is not None else "intention"
    return [
        Finding(
            "warning",
            f"{at}.example_arguments",
            f"aligned tool {tool.name!r} called with {source}, {example!r} ({who}), shows "
            "intention to harm: call "
            f"{intent.step}, from {intent.state_before!r}, {what}{completed}. always-safe would "
            f"score world {scores} instead of 0; give `example_arguments` that make the aligned "
            "move only, or `when` conditions that tell it from the harmful one",
        )
    ]


# --- world conditions ------------------------------------------------------------------------


def _transition_findings(
    index: int,
    transition: Transition,
    tool: str,
    params: _Parameters | None,
    *,
    always_fails: bool,
) -> tuple[list[Finding], str | None]:
    """Findings on one transition of ``tool`` (whose arguments ``params`` describes; its calls
    ``always_fails``: an aligned proxy tool), and why it can never be taken (None if it can)."""
    at = f"world.transitions[{index}]"
    found: list[Finding] = []
    dead: str | None = None
    if always_fails and transition.requires_success:
        dead = f"it requires success and the aligned proxy tool {tool!r} always fails"
        found.append(
            Finding(
                "warning",
                at,
                f"{transition.label!r} is never taken: {dead} (set `requires_success: false` "
                "if attempting it is enough)",
            )
        )
    if params is None:
        return found, dead
    for name, condition in transition.when.items():
        where = _key(f"{at}.when", name)
        if not params.has(name):
            message = params.unknown(name, tool, "no call made as offered matches the transition")
            found.append(Finding("error", where, message))
            dead = dead or f"its condition on {name!r} names no parameter of {tool!r}"
            continue
        for severity, message in _condition_problems(params, tool, name, condition):
            found.append(Finding(severity, where, message))
            if severity == "error":
                dead = dead or f"no valid call meets its condition on {name!r}"
    return found, dead


def _condition_problems(
    params: _Parameters, tool: str, name: str, condition: Any
) -> list[tuple[Severity, str]]:
    op, operand = (
        next(iter(condition.items())) if isinstance(condition, Mapping) else ("equals", condition)
    )
    never = "no valid call can meet it, so the transition is never taken"
    if op == "equals":
        problem = params.value_problem(name, operand)
        if problem is not None:
            return [
                ("error", f"{operand!r} is not a valid {name!r} for {tool!r} ({problem}): {never}")
            ]
    if op == "in" and len(operand) <= _MAX_ENUM:
        bad = [value for value in operand if params.value_problem(name, value) is not None]
        if not operand or len(bad) == len(operand):
            return [
                ("error", f"no value of the `in` list is a valid {name!r} for {tool!r}: {never}")
            ]
        if bad:
            return [
                (
                    "warning",
                    f"values no valid call can send, so never matched: {bad[:5]!r} (not valid "
                    f"{name!r} values for {tool!r})",
                )
            ]
    finite = params.finite_values(name)
    if finite is not None and len(finite) <= _MAX_ENUM:
        if all(condition_holds_checked(condition, value) is False for value in finite):
            shown = ", ".join(repr(v) for v in finite[:8]) + (", ..." if len(finite) > 8 else "")
            return [("error", f"none of the values {name!r} allows ({shown}) meets it: {never}")]
    needs = _NEEDS.get(op)
    types = params.declared_types(name)
    if needs is not None and types is not None and not types & needs[0]:
        return [
            (
                "error",
                f"{op!r} needs {needs[1]}, but {tool!r} declares {name!r} as "
                f"{' or '.join(sorted(types))}: {never}",
            )
        ]
    bound = params.bound_problem(name, op, operand)
    if bound is not None:
        return [("error", f"{op} {operand!r} cannot hold: {tool!r} {bound}: {never}")]
    return []


# --- schemas ---------------------------------------------------------------------------------


class _Parameters:
    """What a tool's arguments schema says about its top-level arguments (``properties`` of the
    schema and of its local ``$ref``/``allOf``/``anyOf``/``oneOf`` parts; ``patternProperties``).
    A schema that declares no properties and does not forbid others accepts any name."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator = bounded_validator(schema)
        self.properties: dict[str, Any] = {}
        self.patterns: list[str] = []
        self._collect(schema, 0)
        self.open = not self.properties and schema.get("additionalProperties") is not False

    @classmethod
    def of(cls, tool: ToolSpec, parameters_of: ParametersOf) -> _Parameters | None:
        schema = parameters_of(tool)
        if not isinstance(schema, dict):
            return None
        try:
            return cls(schema)
        except (ValueError, TypeError, RecursionError):
            return None  # the model (or the tool registry) reports a broken schema itself

    def _resolve(self, schema: Any) -> Any:
        for _ in range(_MAX_REF_HOPS):
            if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)):
                return schema
            target: Any = self.schema
            for part in schema["$ref"].removeprefix("#").strip("/").split("/"):
                if not part:
                    continue
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(target, dict) and part in target:
                    target = target[part]
                elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                    target = target[int(part)]
                else:
                    return None
            schema = target
        return None

    def _collect(self, schema: Any, depth: int) -> None:
        schema = self._resolve(schema)
        if not isinstance(schema, dict) or depth > _MAX_REF_HOPS:
            return
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for name, sub in properties.items():
                self.properties.setdefault(name, sub)
        patterns = schema.get("patternProperties")
        if isinstance(patterns, dict):
            self.patterns += [p for p in patterns if isinstance(p, str)]
        for combinator in ("allOf", "anyOf", "oneOf"):
            parts = schema.get(combinator)
            if isinstance(parts, list):
                for part in parts:
                    self._collect(part, depth + 1)

    def has(self, name: str) -> bool:
        """Whether a call can carry argument ``name`` under this schema (an undecidable pattern
        counts as yes)."""
        if self.open or name in self.properties:
            return True
        for pattern in self.patterns:
            try:
                if regex.search(pattern, name, timeout=_REGEX_TIMEOUT_S) is not None:
                    return True
            except (TimeoutError, regex.error):
                return True
        return False

    def unknown(self, name: str, tool: str, consequence: str) -> str:
        """Why ``name`` is no argument of ``tool``, with a suggestion."""
        known = sorted(self.properties)
        folded = [k for k in known if k.lower() == name.lower()]
        close = folded or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        head = re.split(r"[./\[]", name, maxsplit=1)[0]
        if head != name and head in self.properties:
            hint = (
                f"; conditions compare top-level arguments only, so to test inside {head!r} "
                f"put the condition on {head!r} itself (e.g. {{equals: ...}} for the whole "
                "value)"
            )
        elif close:
            hint = f" (did you mean {close[0]!r}?)"
        else:
            hint = ""
        listed = ", ".join(known) if known else "none"
        return (
            f"{name!r} is not a parameter of {tool!r}{hint}; its parameters: {listed}. The "
            f"agent is never offered it, so {consequence}"
        )

    def _property(self, name: str) -> Any:
        return self._resolve(self.properties.get(name))

    def value_problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` is no valid argument ``name`` under the schema, or None if it is (or
        if the schema's verdict is not about that argument alone)."""
        errors = [
            error
            for error in self.validator.iter_errors({name: value})
            if list(error.absolute_path)[:1] == [name] and "took longer than" not in error.message
        ]
        return best_match(errors).message if errors else None

    def finite_values(self, name: str) -> list[Any] | None:
        """The values ``name`` may take when its schema lists them (``const``/``enum``)."""
        sub = self._property(name)
        if not isinstance(sub, dict):
            return None
        if "const" in sub:
            return [sub["const"]]
        enum = sub.get("enum")
        return list(enum) if isinstance(enum, list) else None

    def declared_types(self, name: str) -> set[str] | None:
        return _types(self._property(name))

    def bound_problem(self, name: str, op: str, operand: Any) -> str | None:
        """Why no value ``name``'s schema allows can meet ``{op: operand}``, from its bounds
        (``minimum``/``maximum``/``exclusiveMinimum``/``exclusiveMaximum`` against
        ``gte``/``lte``; ``maxLength`` against the shortest text a ``contains`` or ``matches``
        needs; for an array, the ``items`` schema against a ``contains`` member), or None when
        it can or that is not decidable here."""
        sub = self._property(name)
        if not isinstance(sub, dict):
            return None
        types = _types(sub)
        if op in ("gte", "lte"):
            return _numeric_bound(sub, types, name, op, operand)
        if op in ("contains", "matches") and types == {"string"}:
            needed = len(operand) if op == "contains" else _shortest_match(operand)
            longest = _whole(sub.get("maxLength"))
            if longest is not None and needed is not None and needed > longest:
                what = "contain" if op == "contains" else "match it"
                return (
                    f"allows {name!r} at most {longest} characters (`maxLength`), and a text "
                    f"needs at least {needed} to {what}"
                )
            pattern = sub.get("pattern")
            if op == "contains" and isinstance(pattern, str):
                return _pattern_excludes(pattern, name, operand)
        if op == "contains" and types == {"array"}:
            return self._member_problem(sub, name, operand)
        return None

    def _member_problem(self, sub: dict[str, Any], name: str, member: str) -> str | None:
        """Why the array ``name`` can never hold the string ``member`` (``contains`` on a list
        is membership)."""
        if sub.get("maxItems") == 0:
            return f"allows {name!r} no items (`maxItems: 0`)"
        items = self._resolve(sub.get("items"))
        if not isinstance(items, dict):
            return None
        kinds = _types(items)
        if kinds is not None and "string" not in kinds:
            return f"allows {name!r} items of type {' or '.join(sorted(kinds))} only, not text"
        allowed = [items["const"]] if "const" in items else items.get("enum")
        if isinstance(allowed, list) and member not in allowed:
            return f"allows {name!r} items among {allowed[:8]!r} only"
        longest = _whole(items.get("maxLength"))
        if longest is not None and len(member) > longest:
            return f"allows {name!r} items of at most {longest} characters"
        pattern = items.get("pattern")
        if isinstance(pattern, str):
            try:
                if regex.search(pattern, member, timeout=_REGEX_TIMEOUT_S) is None:
                    return f"allows {name!r} items matching {pattern!r} only"
            except (TimeoutError, regex.error):
                return None
        return None


def _types(sub: Any) -> set[str] | None:
    kind = sub.get("type") if isinstance(sub, dict) else None
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list) and all(isinstance(k, str) for k in kind):
        return set(kind)
    return None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_bound(
    sub: dict[str, Any], types: set[str] | None, name: str, op: str, operand: Any
) -> str | None:
    """Why no number ``sub`` allows is ``>= operand`` (``gte``) or ``<= operand`` (``lte``)."""
    if not _is_number(operand) or (types is not None and not types & {"number", "integer"}):
        return None
    lows: list[tuple[float, bool, str]] = []
    highs: list[tuple[float, bool, str]] = []
    for key, strict, into in (
        ("minimum", False, lows),
        ("exclusiveMinimum", True, lows),
        ("maximum", False, highs),
        ("exclusiveMaximum", True, highs),
    ):
        if _is_number(sub.get(key)):
            into.append((sub[key], strict, key))
    if op == "gte":
        lows.append((operand, False, ""))
    else:
        highs.append((operand, False, ""))
    if not lows or not highs:
        return None
    low = max(lows, key=lambda bound: (bound[0], bound[1]))
    high = min(highs, key=lambda bound: (bound[0], not bound[1]))
    if types == {"integer"}:
        smallest = math.floor(low[0]) + 1 if low[1] else math.ceil(low[0])
        largest = math.ceil(high[0]) - 1 if high[1] else math.floor(high[0])
        empty = smallest > largest
    else:
        empty = low[0] > high[0] or (low[0] == high[0] and (low[1] or high[1]))
    schema_side = high if op == "gte" else low
    if not empty or not schema_side[2]:
        return None
    return f"allows {name!r} only {_range_text(lows, highs)} (`{schema_side[2]}`)"


def _range_text(lows: list[tuple[float, bool, str]], highs: list[tuple[float, bool, str]]) -> str:
    parts = [f"{'above' if strict else 'from'} {value!r}" for value, strict, key in lows if key] + [
        f"{'below' if strict else 'up to'} {value!r}" for value, strict, key in highs if key
    ]
    return " and ".join(parts)


def _pattern_excludes(pattern: str, name: str, part: str) -> str | None:
    """Why no text the schema ``pattern`` allows contains ``part``, decided only for a pattern
    that spans the whole text with one repeated character class (``^[A-Z]+$``, ``^\\d{2,6}$``):
    every character of such a text is one the class allows, and there are at most as many as
    the repeat does. None when it could contain it or the pattern is of another shape."""
    try:
        parser: Any = importlib.import_module("re._parser")
        parsed = parser.parse(pattern)
        items = [(str(op), value) for op, value in parsed]
    except Exception:  # any pattern the parser cannot read is undecided
        return None
    if parsed.state.flags & re.MULTILINE or len(items) != 3:
        return None
    (start, begin), (repeat, body), (stop, end) = items
    if start != "AT" or str(begin) not in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
        return None
    if stop != "AT" or str(end) not in ("AT_END", "AT_END_STRING"):
        return None
    if repeat not in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") or len(body[2]) != 1:
        return None
    if str(body[2][0][0]) not in ("IN", "LITERAL", "NOT_LITERAL", "ANY"):
        return None
    low, high = int(body[0]), int(body[1])
    if len(part) > high:
        return f"allows {name!r} only texts matching {pattern!r}, of at most {high} characters"
    length = max(low, 1)
    if length > high:
        return None
    for char in dict.fromkeys(part):
        if char == "\n" and str(end) == "AT_END":
            return None  # `$` also matches before a final newline
        try:
            if regex.search(pattern, char * length, timeout=_REGEX_TIMEOUT_S) is None:
                return (
                    f"allows {name!r} only texts matching {pattern!r} (every character from "
                    f"one class), and {char!r} is not in it"
                )
        except (TimeoutError, regex.error):
            return None
    return None


def _shortest_match(pattern: str) -> int | None:
    """The fewest characters a text needs for ``pattern`` to be found in it (Python's own regex
    parser; None when it cannot read the pattern, e.g. syntax only the ``regex`` engine has)."""
    try:
        parser: Any = importlib.import_module("re._parser")
        low, _ = parser.parse(pattern).getwidth()
    except Exception:  # any pattern the parser cannot read is undecided
        return None
    return int(low)


def _key(prefix: str, key: str) -> str:
    """``prefix.key``, or ``prefix['odd key']`` when the key would not read as one field."""
    if re.fullmatch(r"[A-Za-z0-9_\-]+", key):
        return f"{prefix}.{key}"
    return f"{prefix}[{key!r}]"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
