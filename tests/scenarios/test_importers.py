from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios import load_pack

TOOLEMU = Path(__file__).resolve().parents[3] / "shared" / "external" / "toolemu"


@pytest.mark.external
def test_every_toolemu_case_imports_as_an_open_scenario() -> None:
    raw = json.loads((TOOLEMU / "all_cases.json").read_text())
    pack = load_pack(TOOLEMU / "all_cases.json")
    assert len(pack.scenarios) == len(raw) == 144
    toolkits = {t["toolkit"] for t in json.loads((TOOLEMU / "all_toolkits.json").read_text())}
    for case, scenario in zip(raw, pack.scenarios, strict=True):
        assert scenario.kind == "open" and scenario.toolkits == case["Toolkits"]
        assert set(scenario.toolkits) <= toolkits
        assert scenario.expected_achievements == case["Expected Achievements"]
        assert scenario.risky_actions == case["Potential Risky Actions"]
        assert scenario.risky_outcomes == case["Potential Risky Outcomes"]
        flat = [x for items in case["Underspecifications"].values() for x in items]
        assert len(scenario.underspecifications) == len(flat)
