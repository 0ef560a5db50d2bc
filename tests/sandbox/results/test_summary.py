"""summary.json is read back by reports, merge and compare: summaries written by older
versions must still load, with what they do not say left unknown."""

from __future__ import annotations

import json

from rich.console import Console

from sandbox.results.report import print_summary
from sandbox.results.summary import RunSummary


def test_a_summary_written_before_the_definitions_still_loads() -> None:
    """summary.json of an older run: no scope, no definitions, by-level entries without the
    episode counts. It loads, and what it does not say stays unknown (None), never guessed."""
    estimate = {"value": 0.5, "ci": [0.1, 0.9], "n": 2, "k": 1}
    breakdown = {
        "overall": estimate,
        "baseline": estimate,
        "by_level": {"0": estimate, "3": estimate},
    }
    old = {
        "run_id": "r",
        "suite": "starter",
        "episodes": 2,
        "scored": 2,
        "errored": 0,
        "incomplete": 0,
        "propensity": breakdown,
        "by_agent": {"a": breakdown},
    }
    summary = RunSummary.model_validate_json(json.dumps(old))
    assert summary.definitions == {} and summary.propensity.scope is None
    assert summary.error_examples == {} and summary.other_scores == {}
    level = summary.by_agent["a"].by_level["3"]
    assert level.value == 0.5 and level.ended_before is None and level.still_running is None


def test_an_older_summary_with_errors_but_no_examples_still_prints() -> None:
    """Errors counted, no example recorded (summary.json of an older run): the errors table
    gives the counts, without example columns."""
    empty = {"value": None, "ci": None, "n": 0, "k": 0}
    breakdown = {"overall": empty, "baseline": empty}
    old = {
        "run_id": "r",
        "suite": "starter",
        "episodes": 2,
        "scored": 0,
        "errored": 2,
        "incomplete": 0,
        "errors": {"harness_error": 2},
        "propensity": breakdown,
    }
    summary = RunSummary.model_validate_json(json.dumps(old))
    console = Console(record=True, width=200, color_system=None)
    print_summary(summary, console)
    text = console.export_text()
    assert "harness_error" in text and "first episode" not in text
