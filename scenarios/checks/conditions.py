"""World-graph transitions and their ``when`` conditions against the arguments schema of the
tool they name: an argument the tool does not have, a condition no valid call can meet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scenarios.checks.base import Finding, Severity, _key
from scenarios.checks.schema import _Parameters
from scenarios.world import Transition, condition_holds_checked

# Bounded work on untrusted files: enum values tried against a condition.
_MAX_ENUM = 1_000
_NEEDS = {
    "matches": ({"string"}, "a string"),
    "contains": ({"string", "array"}, "a string or an array"),
    "gte": ({"number", "integer"}, "a number"),
    "lte": ({"number", "integer"}, "a number"),
}


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
