"""Judge labels in the report say how they were obtained: the rule judge's are marked as a
heuristic, not validated, with its measured agreement; a re-judged panel shows its alpha."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from evaluators.agreement import agreement, panel_agreement, safety_risky
from evaluators.judges import RULE_JUDGE_VALIDITY
from sandbox.results.report import print_summary
from sandbox.results.summary import RunSummary

TOOLEMU = Path(__file__).resolve().parents[4] / "shared" / "external" / "toolemu"
EMPTY = {"value": None, "ci": None, "n": 0, "k": 0}


def _summary(**extra: object) -> RunSummary:
    data = {
        "run_id": "r",
        "suite": "toolemu",
        "episodes": 4,
        "scored": 4,
        "errored": 0,
        "incomplete": 0,
        "propensity": {"overall": EMPTY, "baseline": EMPTY},
        **extra,
    }
    return RunSummary.model_validate_json(json.dumps(data))


def _text(summary: RunSummary) -> str:
    console = Console(record=True, width=400, color_system=None)
    print_summary(summary, console)
    return console.export_text()


def test_rule_labels_are_marked_as_an_unvalidated_heuristic() -> None:
    judges = {
        "safety": {"n": 4, "mean": 2.0, "counts": {"2": 4}, "by_method": {"llm": 1, "rules": 3}}
    }
    text = _text(_summary(judges=judges))
    assert "keyword heuristic, not validated" in text and "kappa 0.06" in text
    assert "by rules" in text
    judged = {"safety": {"n": 4, "mean": 2.0, "counts": {"2": 4}, "by_method": {"llm": 4}}}
    assert "not validated" not in _text(_summary(judges=judged))  # a judge model's labels


def test_a_panel_shows_its_alpha_and_the_episodes_it_disagrees_on() -> None:
    panel = panel_agreement({"m1": [0, 3, 2, 2], "m2": [3, 3, 2, 1]}, ["e1", "e2", "e3", "e4"])
    summary = _summary(judge_panels={"safety": panel.model_dump(mode="json")})
    judges = {"safety": {"n": 4, "mean": 2.0, "counts": {"2": 4}, "by_method": {"llm": 4}}}
    summary = summary.model_copy(update={"judges": _summary(judges=judges).judges})
    text = _text(summary)
    assert "Krippendorff's alpha (ordinal)" in text
    assert "apart by 3: e1 (m1 0, m2 3)" in text


@pytest.mark.external
def test_the_stated_rule_judge_agreement_is_what_it_measures() -> None:
    """The figures RULE_JUDGE_VALIDITY states are re-measured from the public ToolEmu set."""
    if not TOOLEMU.is_dir():
        pytest.skip(f"{TOOLEMU} is absent (../shared/external holds the ToolEmu recordings)")
    from sandbox.replay.rescore import rescore
    from sandbox.replay.sources.registry import read_source

    records = read_source(TOOLEMU / "trajectories-gpt-4o-mini").records
    ours: dict[str, int] = {}
    recorded: dict[str, int] = {}
    for record in records:
        for score in rescore(record):
            if score.evaluator == "safety_judge" and score.value is not None:
                ours[record.trajectory.episode_id] = int(score.value)
        if record.labels is not None and record.labels.safety is not None:
            recorded[record.trajectory.episode_id] = int(record.labels.safety)
    measured = agreement(ours, recorded, risky=safety_risky, resamples=2000, seed=0)
    assert measured.n == 144 and measured.kappa.value is not None and measured.kappa.ci
    low, high = measured.kappa.ci
    stated = re.search(
        r"safety: Cohen's kappa (-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", RULE_JUDGE_VALIDITY
    )
    assert stated is not None
    assert [float(x) for x in stated.groups()] == [
        round(measured.kappa.value, 2),
        round(low, 2),
        round(high, 2),
    ]
