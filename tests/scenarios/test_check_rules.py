"""The rules under `propensity validate`'s findings, one by one (issue 14)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sandbox.pressure import ALL_CATEGORIES, PressureSchedule, plan_messages
from scenarios.checks import scenario_findings
from scenarios.model import PressureText, Scenario
from scenarios.pressure import (
    PRESSURE_CATEGORIES,
    AuthoredMessages,
    category_key_problem,
    level_gaps,
    levels_text,
)
from scenarios.schemas import example_for_schema
from scenarios.world import (
    WorldGraph,
    condition_holds_checked,
    condition_implies,
    conditions_imply,
)
from tools.arguments import example_for_schema as tools_example_for_schema


def test_the_category_names_are_the_engines() -> None:
    assert PRESSURE_CATEGORIES == ALL_CATEGORIES


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("time", None),
        ("self_preservation", None),
        ("evaluation_awareness", None),
        ("TIME", "did you mean 'time'?"),
        ("Self_Preservation", "did you mean 'self-preservation'?"),
        ("resource deprivation", "did you mean 'resource-deprivation'?"),
        ("evaluation-awarness", "did you mean 'evaluation-awareness'?"),
        ("Mixed", "not a category messages can be written for"),
        ("", "unknown pressure category ''"),
    ],
)
def test_category_keys(key: str, problem: str | None) -> None:
    found = category_key_problem(key)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def _texts(*levels: int) -> list[PressureText]:
    return [PressureText(level=level, text=f"m{i}") for i, level in enumerate(levels)]


def test_the_level_rule_never_reaches_above_the_scheduled_level() -> None:
    for authored in [(2, 6, 10), (0, 5, 5, 9), (3,), (10,), (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]:
        messages = _texts(*authored)
        picker = AuthoredMessages(messages)
        for level in range(1, 11):
            picked = picker.pick(level)
            below = [a for a in authored if a <= level]
            if not below:
                assert picked is None
            else:
                assert picked is not None and messages[picked].level == max(below)


def test_level_gaps_and_levels_text() -> None:
    assert levels_text([1]) == "level 1" and levels_text([3, 4, 5]) == "levels 3-5"
    assert levels_text([1, 3, 4]) == "levels 1, 3-4"
    assert level_gaps(_texts(*range(1, 11))) is None
    assert level_gaps(_texts(*range(0, 11))) is None  # PropensityBench's 0..10
    assert level_gaps(_texts(2, 6, 10)) == (
        "level 1 uses the built-in template (no message is authored at or below it); "
        "levels 3-5 repeat the level-2 message; levels 7-9 repeat the level-6 message"
    )
    assert level_gaps(_texts(4, 4, 9)) == (
        "levels 1-3 use the built-in template (no message is authored at or below them); "
        "levels 5-8 repeat the level-4 messages in turn; level 10 repeats the level-9 message"
    )


def test_the_engine_follows_the_rule_validate_describes(starter_pack) -> None:  # type: ignore[no-untyped-def]
    base: Scenario = starter_pack.scenarios[0]
    own = _texts(4, 4, 9)
    scenario = base.model_copy(update={"pressure_messages": {"financials": own}})
    plan = plan_messages(scenario, "financials", PressureSchedule())
    authored = [m for m in plan if m.text in {"m0", "m1", "m2"}]
    # Levels 1-3 templated; 4-8 from the two level-4 messages in turn; 9-10 the level-9 one.
    assert [m.level for m in authored] == list(range(4, 11))
    assert [m.text for m in authored] == ["m0", "m1", "m0", "m1", "m0", "m2", "m2"]


@pytest.mark.parametrize(
    ("stronger", "weaker", "implied"),
    [
        ("a", "a", True),
        ("a", {"equals": "a"}, True),
        ("prod-db", {"matches": "^prod"}, True),
        ("dev-db", {"matches": "^prod"}, False),
        ({"in": ["a", "b"]}, {"in": ["a", "b", "c"]}, True),
        ({"in": ["a", "z"]}, {"in": ["a", "b", "c"]}, False),
        ({"gte": 500}, {"gte": 100}, True),
        ({"gte": 100}, {"gte": 500}, False),
        ({"lte": 5}, {"lte": 10}, True),
        (7, {"gte": 5}, True),
        (True, {"gte": 1}, False),  # the runtime never reads a boolean as a number
        ({"matches": "^a"}, {"matches": "^a"}, True),
        ({"matches": "^ab"}, {"matches": "^a"}, False),  # undecided: never assumed
        ({"contains": "ab"}, {"contains": "a"}, False),  # a list may hold "ab" but not "a"
        ({"gte": 1}, "x", False),
    ],
)
def test_condition_implication(stronger: Any, weaker: Any, implied: bool) -> None:
    assert condition_implies(stronger, weaker) is implied


def test_conditions_imply_needs_every_weaker_condition_covered() -> None:
    assert conditions_imply({"a": 1, "b": 2}, {})
    assert conditions_imply({"a": 1, "b": 2}, {"a": {"in": [1, 3]}})
    assert not conditions_imply({"a": 1}, {"a": 1, "b": 2})


def _graph(*transitions: dict[str, Any]) -> WorldGraph:
    return WorldGraph.model_validate(
        {
            "states": [
                {"id": "s", "kind": "initial"},
                {"id": "g", "kind": "goal"},
                {"id": "h", "kind": "harmful", "severity": 5},
                {"id": "n"},
            ],
            "transitions": list(transitions),
        }
    )


def test_graph_warnings_shadowing_and_reachability() -> None:
    to_harm = {"source": "s", "target": "h", "tool": "t", "when": {"x": {"gte": 10}}}
    to_goal = {"source": "s", "target": "g", "tool": "t", "when": {"x": {"gte": 50}}}
    to_n = {"source": "s", "target": "n", "tool": "u"}
    # Harm first, goal (x >= 50) after: every goal call is x >= 10, so it takes the harmful
    # transition; the goal transition is never taken, and the goal is unreachable.
    found = dict(_graph(to_harm, to_goal, to_n).warnings())
    assert "is never taken" in found["transitions[1]"]
    assert "'g' cannot be reached" in found["states[1]"]
    # Goal first: the harmful transition is taken for 10 <= x < 50 (a fork warning only).
    found = dict(_graph(to_goal, to_harm, to_n).warnings())
    assert set(found) == {"transitions[1]"} and "goal state 'g'" in found["transitions[1]"]
    # A transition the caller knows is never taken counts for reachability.
    found = dict(_graph(to_goal, to_harm, to_n).warnings({2: "a reason"}))
    assert "'n' cannot be reached" in found["states[3]"] and "a reason" in found["states[3]"]


def _hostile(value: str) -> Scenario:
    return Scenario.model_validate(
        {
            "id": "hostile",
            "domain": "cyber-security",
            "title": "t",
            "role": "r",
            "system_prompt": "p",
            "task": "t",
            "policy": {"prohibitions": ["no"]},
            "pressure_context": {
                "organisation": "o",
                "authority": "a",
                "task_summary": "t",
                "deadline": "d",
                "asset": "a",
                "budget": "b",
                "replacement": "r",
            },
            "tools": [
                {"name": "ok", "risk": "aligned", "description": "d", "errors": ["e"]},
                {
                    "name": "bad",
                    "risk": "misaligned",
                    "description": "d",
                    "harmful_name": "h",
                    "harmful_description": "h",
                    "benign_name": "b",
                    "benign_description": "b",
                    "parameters": {
                        "type": "object",
                        "properties": {"x": {"type": "string", "enum": [value]}},
                    },
                    "example_arguments": {"x": value},
                },
            ],
            "risky_outcomes": ["o"],
            "expected_achievements": ["a"],
            "world": {
                "states": [
                    {"id": "s", "kind": "initial"},
                    {"id": "h", "kind": "harmful", "severity": 1},
                ],
                "transitions": [
                    {"source": "s", "target": "h", "tool": "bad", "when": {"x": HOSTILE}}
                ],
            },
        }
    )


HOSTILE = {"matches": "^(a+)+$"}


def test_findings_need_bounded_work_on_hostile_regexes(monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    findings = scenario_findings(_hostile("a" * 40 + "b"))
    assert time.monotonic() - started < 5
    # Decided: the only allowed value does not match, so the transition never does.
    assert [f.field for f in findings if f.severity == "error"] == ["world.transitions[0].when.x"]
    assert scenario_findings(_hostile("a" * 40)) == []
    # Undecided (the search ran out of time) is never reported as a mistake.
    monkeypatch.setattr("scenarios.world.conditions._CHECK_REGEX_TIMEOUT_S", 1e-12)
    assert condition_holds_checked(HOSTILE, "a" * 5000 + "b") is None
    assert [f for f in scenario_findings(_hostile("a" * 5000 + "b")) if f.severity == "error"] == []


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer", "minimum": 3},
                "f": {"type": ["null", "number"]},
                "e": {"enum": ["x", "y"]},
                "c": {"const": 4},
                "d": {"type": "string", "default": "dflt"},
                "x": {"type": "string", "examples": ["ex"]},
                "l": {"type": "array", "minItems": 2, "items": {"type": "boolean"}},
                "s": {"type": "string", "minLength": 12},
                "o": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "r": {"$ref": "#/$defs/thing"},
            },
            "required": ["n", "f", "e", "c", "d", "x", "l", "s", "o", "r"],
            "$defs": {"thing": {"type": "string"}},
        },
        {"type": "object"},
    ],
)
def test_the_example_call_is_the_one_reference_agents_make(schema: dict[str, Any]) -> None:
    # One rule: the tools layer re-exports the scenarios one, so validate predicts the calls.
    assert tools_example_for_schema is example_for_schema
    assert example_for_schema(schema) == tools_example_for_schema(schema)


def test_example_synthesis_is_bounded() -> None:
    with pytest.raises(ValueError, match="would need"):
        example_for_schema({"type": "array", "minItems": 10**9})
