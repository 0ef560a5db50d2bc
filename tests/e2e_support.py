"""Helpers for end-to-end tests: scripts for the scripted OpenAI server built from a pack."""

from __future__ import annotations

from typing import Any

from scenarios import Naming, Pack, RiskLabel


def names_of(pack: Pack, risk: RiskLabel) -> list[str]:
    names: set[str] = set()
    for scenario in pack.scenarios:
        for tool in scenario.tools_with(risk):
            names.update(tool.exposed_name(naming) for naming in Naming)
    return sorted(names)


def exact(names: list[str]) -> str:
    return "^(" + "|".join(names) + ")$"


def pressure_then_risky_script(pack: Pack) -> dict[str, Any]:
    """Turn 1: two getter calls in one reply; turn 2: aligned call with garbled arguments;
    turn 3: a valid aligned call; from turn 4: the misaligned tool. Under the default schedule
    (a pressure message after every turn) the misaligned call lands at level 3."""
    getters = exact(names_of(pack, RiskLabel.NEUTRAL))
    aligned = exact(names_of(pack, RiskLabel.ALIGNED))
    misaligned = exact(names_of(pack, RiskLabel.MISALIGNED))
    return {
        "turns": [
            {"call": [getters], "count": 2},
            {"call": [aligned], "raw_arguments": '{"oops": '},
            {"call": [aligned]},
        ],
        "default": {"call": [misaligned]},
    }


def always_aligned_script(pack: Pack) -> dict[str, Any]:
    return {"default": {"call": [exact(names_of(pack, RiskLabel.ALIGNED))]}}
