"""The language of a transition's argument conditions (``Transition.when``): validating one,
deciding whether a value meets it (at run time, and with bounded work while checking a pack), and
the conservative implication and disjointness between conditions that ``WorldGraph.warnings`` and
``scenarios.checks`` rely on. The operators are described in ``scenarios.world``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import regex
from pydantic import AfterValidator

OPERATORS = ("equals", "in", "contains", "matches", "gte", "lte")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_condition(name: str, condition: Any) -> None:
    if not isinstance(condition, Mapping):
        return
    if len(condition) != 1 or next(iter(condition)) not in OPERATORS:
        raise ValueError(
            f"condition on {name!r} must be a literal or a mapping with one operator among "
            f"{', '.join(OPERATORS)} (use {{equals: ...}} to compare against a mapping)"
        )
    op, operand = next(iter(condition.items()))
    if op == "in" and not isinstance(operand, list):
        raise ValueError(f"'in' on {name!r} needs a list of values")
    if op == "contains" and not isinstance(operand, str):
        raise ValueError(f"'contains' on {name!r} needs a string")
    if op in ("gte", "lte") and not _is_number(operand):
        raise ValueError(f"{op!r} on {name!r} needs a number")
    if op == "matches":
        if not isinstance(operand, str):
            raise ValueError(f"'matches' on {name!r} needs a regex string")
        try:  # the engine that evaluates it at run time (``condition_holds``)
            regex.compile(operand)
        except regex.error as exc:
            raise ValueError(f"bad regex for {name!r}: {operand!r} ({exc})") from exc


def _check_conditions(when: dict[str, Any]) -> dict[str, Any]:
    for name, condition in when.items():
        _check_condition(name, condition)
    return when


#: A ``when`` mapping (argument name → condition), validated: transitions, injection points and
#: attack goals share it.
Conditions = Annotated[dict[str, Any], AfterValidator(_check_conditions)]


# A ``matches`` regex on an argument the agent wrote stops after this long at run time: the
# pattern is the author's, the text the agent's, and a catastrophic pair must not stall the run.
RUN_REGEX_TIMEOUT_S = 1.0


class ConditionUndecided(Exception):
    """A condition could not be decided within its bounds (a ``matches`` regex ran out of
    time): the call's effect on the world is unknown, which is never the same as "no match"."""


def condition_holds(condition: Any, value: Any) -> bool:
    """Whether one argument value satisfies one (already validated) condition.

    Raises ``ConditionUndecided`` when a ``matches`` regex runs past ``RUN_REGEX_TIMEOUT_S``."""
    if not isinstance(condition, Mapping):
        return bool(value == condition)
    op, operand = next(iter(condition.items()))
    if op == "equals":
        return bool(value == operand)
    if op == "in":
        return any(value == item for item in operand)
    if op == "contains":
        if isinstance(value, str):
            return operand in value
        return isinstance(value, list) and operand in value
    if op == "matches":
        if not isinstance(value, str):
            return False
        try:
            return regex.search(operand, value, timeout=RUN_REGEX_TIMEOUT_S) is not None
        except TimeoutError:
            raise ConditionUndecided(
                f"'matches' {operand!r} ran past {RUN_REGEX_TIMEOUT_S} s on a "
                f"{len(value):,}-character argument"
            ) from None
    if op == "gte":
        return _is_number(value) and value >= operand
    if op == "lte":
        return _is_number(value) and value <= operand
    raise ValueError(f"unknown operator {op!r}")  # unreachable after validation


# Regex searches made while *checking* a pack (not while running it) stop after this long.
_CHECK_REGEX_TIMEOUT_S = 0.05


def condition_holds_checked(condition: Any, value: Any) -> bool | None:
    """``condition_holds`` for checks on author-supplied values, with bounded work: a
    ``matches`` regex runs under a time limit, and None means undecided (it ran out of time,
    or the ``regex`` engine could not read the pattern)."""
    if isinstance(condition, Mapping) and next(iter(condition)) == "matches":
        if not isinstance(value, str):
            return False
        try:
            pattern = next(iter(condition.values()))
            return regex.search(pattern, value, timeout=_CHECK_REGEX_TIMEOUT_S) is not None
        except (TimeoutError, regex.error):
            return None
    try:
        return condition_holds(condition, value)
    except ConditionUndecided:
        return None


def _operator(condition: Any) -> tuple[str, Any]:
    if isinstance(condition, Mapping):
        op, operand = next(iter(condition.items()))
        return str(op), operand
    return "equals", condition


def condition_implies(stronger: Any, weaker: Any) -> bool:
    """Whether every argument value that satisfies ``stronger`` surely satisfies ``weaker``
    (both validated conditions). Conservative: False whenever it cannot be decided, e.g. two
    different regexes.

    Decided: identical conditions; a literal/``equals`` value, or every value of an ``in``
    list, satisfying ``weaker``; ``gte a`` ⇒ ``gte b`` when a ≥ b; ``lte a`` ⇒ ``lte b`` when
    a ≤ b."""
    a_op, a = _operator(stronger)
    b_op, b = _operator(weaker)
    if a_op == b_op and type(a) is type(b) and a == b:
        return True
    if a_op == "equals":
        return condition_holds_checked(weaker, a) is True
    if a_op == "in":
        return all(condition_holds_checked(weaker, value) is True for value in a)
    if a_op == b_op == "gte":
        return bool(a >= b)
    if a_op == b_op == "lte":
        return bool(a <= b)
    return False


# The kinds of value an operator can hold for (``_is_number`` excludes booleans).
_HOLDS_FOR = {
    "matches": frozenset({"string"}),
    "contains": frozenset({"string", "array"}),
    "gte": frozenset({"number"}),
    "lte": frozenset({"number"}),
}


def _literal_may_meet(value: Any, condition: Any) -> bool:
    """Whether an argument equal to ``value`` (as the runtime compares: ``1 == 1.0 == True``)
    may satisfy ``condition``; undecided counts as may."""
    candidates = [value, int(value)] if isinstance(value, bool) else [value]
    return any(condition_holds_checked(condition, c) is not False for c in candidates)


def condition_disjoint(first: Any, second: Any) -> bool:
    """Whether no argument value can satisfy both conditions (both validated). Conservative:
    False whenever it cannot be decided for certain (two regexes, two substrings, a regex and
    a substring).

    Decided: a literal/``equals`` value, or every value of an ``in`` list, that fails the other
    condition; operators that hold for different kinds of value (``matches`` or ``contains``
    against ``gte``/``lte``); ``gte a`` against ``lte b`` with a > b."""
    a_op, a = _operator(first)
    b_op, b = _operator(second)
    if a_op == "equals":
        return not _literal_may_meet(a, second)
    if b_op == "equals":
        return not _literal_may_meet(b, first)
    if a_op == "in":
        return not any(_literal_may_meet(value, second) for value in a)
    if b_op == "in":
        return not any(_literal_may_meet(value, first) for value in b)
    if not _HOLDS_FOR[a_op] & _HOLDS_FOR[b_op]:
        return True
    if {a_op, b_op} == {"gte", "lte"}:
        low, high = (a, b) if a_op == "gte" else (b, a)
        return bool(low > high)
    return False


def conditions_disjoint(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether no call can satisfy both sets of conditions (two transitions' ``when``): some
    argument both constrain with provably disjoint conditions (``condition_disjoint``). An
    argument only one of them constrains can take a value the other allows, so it never
    separates them."""
    return any(
        name in second and condition_disjoint(condition, second[name])
        for name, condition in first.items()
    )


def conditions_imply(stronger: Mapping[str, Any], weaker: Mapping[str, Any]) -> bool:
    """Whether every call whose arguments satisfy all of ``stronger`` (a transition's ``when``)
    surely satisfies all of ``weaker``: each condition of ``weaker`` is implied by the condition
    ``stronger`` puts on the same argument (an argument ``stronger`` leaves free can take any
    value, so a condition on it is not implied). ``weaker == {}`` is implied by anything."""
    return all(
        name in stronger and condition_implies(stronger[name], condition)
        for name, condition in weaker.items()
    )
