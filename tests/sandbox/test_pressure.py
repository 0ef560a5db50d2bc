from __future__ import annotations

import re

import pytest

from sandbox.pressure import (
    ALL_CATEGORIES,
    BASELINE,
    MIXED,
    PressureEngine,
    PressureSchedule,
    PressureTemplates,
    default_templates,
    parse_category,
    plan_messages,
    template_context,
)


def test_six_categories_and_every_level_render_for_every_starter_scenario(starter_pack) -> None:  # type: ignore[no-untyped-def]
    templates = default_templates()
    assert len(ALL_CATEGORIES) == 6
    for scenario in starter_pack.scenarios:
        context = template_context(scenario)
        for category in ALL_CATEGORIES:
            texts = [templates.render(category, level, context) for level in range(1, 11)]
            assert len(set(texts)) == 10
            for text in texts:
                assert not re.search(r"[{}]", text), text


def test_schedule_levels_messages_per_level_and_mixed(starter_pack) -> None:  # type: ignore[no-untyped-def]
    scenario = starter_pack.scenarios[0]
    schedule = PressureSchedule(levels=[2, 5, 9], messages_per_level=2)
    plan = plan_messages(scenario, "time", schedule)
    assert [(m.category, m.level) for m in plan] == [("time", lvl) for lvl in (2, 2, 5, 5, 9, 9)]
    assert plan[1].text.startswith("Follow-up (2 of 2)")
    mixed = plan_messages(scenario, MIXED, PressureSchedule(levels=list(range(1, 8))))
    assert [m.category for m in mixed[:6]] == list(ALL_CATEGORIES)
    assert mixed[6].category == ALL_CATEGORIES[0]
    assert plan_messages(scenario, BASELINE, schedule) == []
    only_two = PressureSchedule(levels=[1, 2, 3], mixed_categories=["time", "financials"])
    assert [m.category for m in plan_messages(scenario, MIXED, only_two)] == [
        "time",
        "financials",
        "time",
    ]


def test_triggers(starter_pack) -> None:  # type: ignore[no-untyped-def]
    scenario = starter_pack.scenarios[0]
    each_turn = PressureSchedule(levels=[1, 2])
    engine = PressureEngine(plan_messages(scenario, "financials", each_turn), each_turn)
    assert engine.level == 0
    assert engine.after_turn(failed_aligned_call=False).level == 1  # type: ignore[union-attr]
    assert engine.after_turn(failed_aligned_call=False).level == 2  # type: ignore[union-attr]
    assert engine.exhausted and engine.after_turn(failed_aligned_call=True) is None
    on_failure = PressureSchedule(levels=[1, 2], trigger="failed_aligned_call")
    engine = PressureEngine(plan_messages(scenario, "financials", on_failure), on_failure)
    assert engine.after_turn(failed_aligned_call=False) is None
    assert engine.level == 0
    assert engine.after_turn(failed_aligned_call=True).level == 1  # type: ignore[union-attr]


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pressure category"):
        parse_category("boredom")
    with pytest.raises(ValueError):
        PressureSchedule(levels=[0, 11])
    bad = {c: {lvl: "ok" for lvl in range(1, 11)} for c in ALL_CATEGORIES}
    bad["time"][3] = "Hurry, {nonexistent}!"
    with pytest.raises(ValueError, match="time level 3"):
        PressureTemplates(bad)


def test_scenario_messages_replace_templates_by_the_nearest_unused_level(starter_pack) -> None:  # type: ignore[no-untyped-def]
    from sandbox.pressure.engine import render_scenario_message
    from scenarios.model import PressureText

    own = [
        PressureText(level=0, text="A", sender="Ops desk", subject="Heads-up"),
        PressureText(level=3, text="B"),
        PressureText(level=6, text="C"),
        PressureText(level=10, text="D"),
    ]
    base = starter_pack.scenarios[0]
    scenario = base.model_copy(update={"pressure_messages": {"time": own}})
    assert render_scenario_message(own[0]) == "From: Ops desk\nSubject: Heads-up\n\nA"
    plan = plan_messages(scenario, "time", PressureSchedule(levels=[2, 5, 9], messages_per_level=2))
    # Level 2 takes B (3) then A (0), delivered in the scenario's order; level 5 takes C, D;
    # level 9 finds all used, starts over and takes D then C. Levels stay the scheduled ones.
    assert [(m.level, m.text.rsplit("\n", 1)[-1]) for m in plan] == [
        (2, "A"), (2, "B"), (5, "C"), (5, "D"), (9, "C"), (9, "D"),
    ]  # fmt: skip
    assert not any(m.text.startswith("Follow-up") for m in plan)
    # Ties go to the lower level.
    tie = base.model_copy(
        update={"pressure_messages": {"time": [own[3], PressureText(level=4, text="E"), own[2]]}}
    )
    assert plan_messages(tie, "time", PressureSchedule(levels=[5]))[0].text == "E"
    # Categories without messages of their own keep our templates, in `mixed` too.
    templates_only = plan_messages(base, "financials", PressureSchedule(levels=[1, 2]))
    assert plan_messages(scenario, "financials", PressureSchedule(levels=[1, 2])) == templates_only
    mixed = plan_messages(
        scenario, MIXED, PressureSchedule(levels=[1, 4, 7], mixed_categories=["time", "financials"])
    )
    assert [m.category for m in mixed] == ["time", "financials", "time"]
    assert [m.text for m in mixed[::2]] == [render_scenario_message(own[0]), "C"]
    context = template_context(scenario)
    assert mixed[1].text == default_templates().render("financials", 4, context)
    # PropensityBench spells categories with underscores: accepted as well.
    underscored = base.model_copy(update={"pressure_messages": {"evaluation_awareness": own}})
    (top,) = plan_messages(underscored, "evaluation-awareness", PressureSchedule(levels=[10]))
    assert top.text == "D"
