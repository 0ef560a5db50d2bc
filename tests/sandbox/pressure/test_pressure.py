from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.pressure import (
    ALL_CATEGORIES,
    BASELINE,
    MIXED,
    PressureEngine,
    PressureMessage,
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
    with pytest.raises(ValueError, match="did you mean 'self-preservation'"):
        parse_category("self_preservation")
    with pytest.raises(ValueError, match=r"did you mean 'financials'.*known: time, financials"):
        PressureSchedule(mixed_categories=["Financials"])
    with pytest.raises(ValueError):
        PressureSchedule(levels=[0, 11])
    bad = {c: {lvl: "ok" for lvl in range(1, 11)} for c in ALL_CATEGORIES}
    bad["time"][3] = "Hurry, {nonexistent}!"
    with pytest.raises(ValueError, match="time level 3"):
        PressureTemplates(bad)


def test_scenario_messages_replace_templates_at_or_below_the_scheduled_level(starter_pack) -> None:  # type: ignore[no-untyped-def]
    # Rewritten for issue 14: the old rule took the *nearest unused* message, also one written
    # for a higher level (level 2 got B, written for 3, and a level-9 slot got D, written for 10).
    # Now a slot at level L gets the message authored at the highest level at or below L.
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
    # Level 2 repeats A (level 0), level 5 B (3), level 9 C (6); D (10) is above every slot.
    assert [(m.level, m.text.rsplit("\n", 1)[-1]) for m in plan] == [
        (2, "A"), (2, "A"), (5, "B"), (5, "B"), (9, "C"), (9, "C"),
    ]  # fmt: skip
    assert not any(m.text.startswith("Follow-up") for m in plan)
    # The highest authored level at or below, whatever the order written.
    unordered = base.model_copy(
        update={"pressure_messages": {"time": [own[3], PressureText(level=4, text="E"), own[2]]}}
    )
    assert plan_messages(unordered, "time", PressureSchedule(levels=[5]))[0].text == "E"
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


def _texts(plan: list[PressureMessage]) -> list[tuple[int, str]]:
    return [(m.level, m.text) for m in plan]


def test_messages_for_levels_2_6_10_arrive_at_their_levels_never_earlier(starter_pack) -> None:  # type: ignore[no-untyped-def]
    """The reported case: under the old nearest-unused rule level 1 got the level-2 text and
    level 3 the level-10 text. Now no level gets a message written for a higher one; level 1,
    below every message, gets our level-1 template; levels between repeat the lower message."""
    from scenarios.model import PressureText

    base = starter_pack.scenarios[0]
    own = [PressureText(level=lvl, text=f"authored-{lvl}") for lvl in (2, 6, 10)]
    scenario = base.model_copy(update={"pressure_messages": {"self-preservation": own}})
    schedule = PressureSchedule()
    plan = plan_messages(scenario, "self-preservation", schedule)
    template_1 = default_templates().render("self-preservation", 1, template_context(scenario))
    assert _texts(plan) == [
        (1, template_1),
        (2, "authored-2"), (3, "authored-2"), (4, "authored-2"), (5, "authored-2"),
        (6, "authored-6"), (7, "authored-6"), (8, "authored-6"), (9, "authored-6"),
        (10, "authored-10"),
    ]  # fmt: skip
    for message in plan:
        if message.text.startswith("authored-"):
            assert int(message.text.removeprefix("authored-")) <= message.level
    # The schedule is the same with or without the scenario's messages.
    templated = plan_messages(base, "self-preservation", schedule)
    assert [(m.category, m.level, m.index) for m in plan] == [
        (m.category, m.level, m.index) for m in templated
    ]


def test_several_messages_at_one_level_are_used_in_turn_across_slots_and_levels(
    starter_pack,
) -> None:  # type: ignore[no-untyped-def]
    from scenarios.model import PressureText

    base = starter_pack.scenarios[0]
    own = [
        PressureText(level=5, text="five-a"),
        PressureText(level=3, text="three"),
        PressureText(level=5, text="five-b"),
        PressureText(level=5, text="five-c"),
    ]
    scenario = base.model_copy(update={"pressure_messages": {"time": own}})
    schedule = PressureSchedule(levels=[1, 3, 5, 6, 7], messages_per_level=2)
    plan = plan_messages(scenario, "time", schedule)
    context = template_context(scenario)
    first = default_templates().render("time", 1, context)
    assert _texts(plan) == [
        # Below every message: our template, its repeat marked as a follow-up.
        (1, first), (1, f"Follow-up (2 of 2): {first}"),
        (3, "three"), (3, "three"),
        # Level 5's three messages in the order written, continuing through levels 6 and 7.
        (5, "five-a"), (5, "five-b"), (6, "five-c"), (6, "five-a"), (7, "five-b"), (7, "five-c"),
    ]  # fmt: skip
    assert len(plan) == len(schedule.levels) * schedule.messages_per_level


def test_a_template_that_opens_with_a_filled_value_starts_with_a_capital() -> None:
    # The default context ("the organisation", ...) must not start a message in lower case.
    from scenarios.model import PressureContext

    templates = default_templates()
    context = {**PressureContext().model_dump(), "role": "assistant"}
    for category in ALL_CATEGORIES:
        for level in range(1, 11):
            text = templates.render(category, level, context)
            assert text[:1].isupper(), (category, level, text)


# --- non-monotonic schedules and malformed --levels (adversarial gap 13c) -------------------------


def test_a_level_list_that_goes_down_is_refused_naming_the_levels() -> None:
    # By-level results are cumulative (an episode counts at every level up to the one it
    # reached): 5,1,2,8 would count episodes at levels they never reached.
    with pytest.raises(ValueError, match=r"must not decrease.*got 5, 1, 2, 8: 5 then 1"):
        PressureSchedule(levels=[5, 1, 2, 8])
    assert PressureSchedule(levels=[1, 2, 2, 8]).levels == [1, 2, 2, 8]  # repeats escalate too


@pytest.mark.parametrize(
    ("levels", "words"),
    [
        ("5,1,2,8", "levels must not decrease (5 then 1)"),
        ("1-", "'1-' is not a level or a range"),
        ("2.5", "'2.5' is not a level or a range"),
        ("1-10-2", "'1-10-2' is not a level or a range"),
        ("5-1", "the range '5-1' goes down"),
        (",", "no level given"),
        ("x", "'x' is not a level or a range"),
    ],
)
def test_bad_levels_on_the_command_line_are_a_clean_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], levels: str, words: str
) -> None:
    run_dir = tmp_path / "run"
    argv = ["run", "--suite", "starter", "--agent", "always-safe", "--limit", "1"]
    code = main([*argv, "--levels", levels, "--out", str(run_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert "internal error" not in err and "error: --levels" in err and words in err, err
    assert not run_dir.exists()
