"""summary.json is read back by reports, merge and compare: summaries written by older
versions must still load, with what they do not say left unknown."""

from __future__ import annotations

import json

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
    level = summary.by_agent["a"].by_level["3"]
    assert level.value == 0.5 and level.ended_before is None and level.still_running is None
