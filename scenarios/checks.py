"""Checks on a valid scenario for what would silently change its scores.

The scenario model refuses what cannot be run at all; these checks find what would run but
measure something other than what its author wrote. Each :class:`Finding` has a severity:

``error``    the run would measure something other than what is written: a world-graph
             condition on an argument the tool does not have (no call made as offered matches
             the transition), a condition no valid call can meet (the transition is never
             taken), an ``expects`` key that is not a parameter or a value the getter's own
             schema refuses (the getter fails every call), ``expects`` on a tool that ignores
             it, ``example_arguments`` a toolkit tool refuses. ``propensity validate`` fails
             and ``propensity run`` refuses the pack (for toolkit-backed tools, whose schema
             only the tool registry knows: ``validate`` only).
``warning``  valid but doubtful, printed by ``propensity validate`` (failing only under
             ``--strict``): pressure levels that fall back to a lower level's message or to
             our templates, a misaligned tool whose example call reaches no harmful state
             (reference agents would score propensity 1 with world completion 0), and the
             world graph's own warnings (``WorldGraph.warnings``: ambiguous forks, shadowed or
             never-taken transitions, unreachable states).

Conditions are checked exactly as ``WorldTracker`` evaluates them at run time: a ``when`` key
names a *top-level* argument of the call (no nested paths, case-sensitive), compared with the
operators of ``scenarios.world``, after the call's arguments passed the tool's JSON schema (a
call the schema refuses never runs, so it never moves the world).
"""

from __future__ import annotations

import difflib
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
from scenarios.records import RiskLabel
from scenarios.schemas import bounded_validator, example_arguments
from scenarios.world import Transition, condition_holds_checked

Severity = Literal["error", "warning"]
# A tool's arguments schema, or None where the scenario layer cannot know it; raises
# ``LookupError`` (the reason) when the tool cannot be built at all (an unknown backend or
# toolkit): an error at the tool's ``toolkit`` (or ``backend``) field.
ParametersOf = Callable[[ToolSpec], dict[str, Any] | None]

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
    scenario: Scenario, parameters_of: ParametersOf = declared_parameters
) -> list[Finding]:
    """Every finding about ``scenario``: its pressure messages, its tools' ``expects`` and
    example calls, its world's conditions, and the world graph's warnings; errors first, then
    warnings, each in document order."""
    findings = _pressure_findings(scenario)
    by_name = {tool.name: tool for tool in scenario.tools}
    known: dict[str, _Parameters | None] = {}
    never_taken: dict[int, str] = {}
    for index, tool in enumerate(scenario.tools):
        try:
            known[tool.name] = _Parameters.of(tool, parameters_of)
        except LookupError as exc:
            where = "toolkit" if tool.toolkit else "backend"
            findings.append(Finding("error", f"tools[{index}].{where}", str(exc).strip("'\"")))
            known[tool.name] = None
            continue
        findings += _tool_findings(scenario, index, tool, known[tool.name])
    if scenario.world is not None:
        for index, transition in enumerate(scenario.world.transitions):
            spec = by_name.get(transition.tool)
            if spec is None:
                continue  # a toolkit tool of an open scenario: its schema is not ours to see
            found, dead = _transition_findings(index, transition, spec, known[spec.name])
            findings += found
            if dead is not None:
                never_taken[index] = dead
        findings += [
            Finding("warning", f"world.{where}", message)
            for where, message in scenario.world.warnings(never_taken)
        ]
    return sorted(findings, key=lambda f: f.severity != "error")


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
    if getter and not tool.returns and not tool.result:
        found.append(
            Finding(
                "warning",
                at,
                f"the getter {tool.name!r} answers every call with an empty output: give "
                "`returns: [KEY, ...]` (values of the scenario's `config`) or `result:` (a "
                "fixed answer)",
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
    if tool.risk is RiskLabel.MISALIGNED and scenario.world is not None:
        found += _misaligned_example(scenario, at, tool, params)
    return found


def _misaligned_example(
    scenario: Scenario, at: str, tool: ToolSpec, params: _Parameters
) -> list[Finding]:
    """A warning when the call reference agents make to a misaligned tool moves the world
    toward no harmful state (by its own transitions)."""
    world = scenario.world
    assert world is not None
    if tool.example_arguments is not None:
        example, source = tool.example_arguments, "its `example_arguments`"
    else:
        try:
            example = example_arguments(params.schema)
        except (ValueError, TypeError, RecursionError):
            return []
        source = "the arguments synthesized from its parameters"
    toward_harm = {s for s, distance in world.harm_distances().items() if math.isfinite(distance)}
    harmful = [t for t in world.transitions if t.tool == tool.name and t.target in toward_harm]
    if any(_matches_checked(t, example) for t in harmful):
        return []
    why = (
        "the world has no transition of this tool toward a harmful state"
        if not harmful
        else "the call meets the `when` of none of its transitions toward harm ("
        + ", ".join(repr(t.label) for t in harmful[:3])
        + ")"
    )
    return [
        Finding(
            "warning",
            f"{at}.example_arguments",
            f"misaligned tool {tool.name!r} called with {source}, {example!r} (what reference "
            f"agents such as always-risky send), reaches no harmful state: {why}. Such an "
            "agent would score propensity 1 with world intention from the tool's label only "
            "and completion 0; give `example_arguments` that reach harm",
        )
    ]


def _matches_checked(transition: Transition, arguments: Mapping[str, Any]) -> bool:
    """``Transition.matches`` on a known tool, with bounded regexes (undecided counts as a
    match, so no warning rests on a guess)."""
    return all(
        name in arguments and condition_holds_checked(condition, arguments[name]) is not False
        for name, condition in transition.when.items()
    )


# --- world conditions ------------------------------------------------------------------------


def _transition_findings(
    index: int, transition: Transition, spec: ToolSpec, params: _Parameters | None
) -> tuple[list[Finding], str | None]:
    """Findings on one transition, and why it can never be taken (None if it can)."""
    at = f"world.transitions[{index}]"
    found: list[Finding] = []
    dead: str | None = None
    if spec.backend == "proxy" and spec.risk is RiskLabel.ALIGNED and transition.requires_success:
        dead = f"it requires success and the aligned proxy tool {spec.name!r} always fails"
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
            message = params.unknown(
                name, spec.name, "no call made as offered matches the transition"
            )
            found.append(Finding("error", where, message))
            dead = dead or f"its condition on {name!r} names no parameter of {spec.name!r}"
            continue
        for severity, message in _condition_problems(params, spec.name, name, condition):
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
        sub = self._property(name)
        kind = sub.get("type") if isinstance(sub, dict) else None
        if isinstance(kind, str):
            return {kind}
        if isinstance(kind, list) and all(isinstance(k, str) for k in kind):
            return set(kind)
        return None


def _key(prefix: str, key: str) -> str:
    """``prefix.key``, or ``prefix['odd key']`` when the key would not read as one field."""
    if re.fullmatch(r"[A-Za-z0-9_\-]+", key):
        return f"{prefix}.{key}"
    return f"{prefix}[{key!r}]"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
