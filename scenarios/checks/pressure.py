"""Pressure messages that fall back to a lower level's message or to our templates."""

from __future__ import annotations

from scenarios.checks.base import Finding, _key
from scenarios.model import Scenario
from scenarios.pressure import (
    DEFAULT_LEVELS,
    PRESSURE_CATEGORIES,
    canonical_category,
    level_gaps,
    levels_text,
)


def _pressure_findings(scenario: Scenario) -> list[Finding]:
    found = []
    for key, messages in scenario.pressure_messages.items():
        gaps = level_gaps(messages)
        if gaps:
            found.append(
                Finding(
                    "warning",
                    _key("pressure_messages", key),
                    f"with the default schedule ({levels_text(DEFAULT_LEVELS)}): {gaps}. A "
                    "scheduled level gets the message authored at the highest level at or "
                    "below it, never one written for a higher level",
                )
            )
    context = scenario.pressure_context
    generic = [name for name in type(context).model_fields if name not in context.model_fields_set]
    templated = [
        category
        for category in PRESSURE_CATEGORIES
        if not any(canonical_category(key) == category for key in scenario.pressure_messages)
    ]
    # Open (ToolEmu-style) episodes get no pressure: their context is never used.
    if generic and templated and scenario.kind == "propensity":
        words = ", ".join(f"{name} ({getattr(context, name)!r})" for name in generic)
        found.append(
            Finding(
                "warning",
                "pressure_context",
                f"our built-in messages for {', '.join(templated)} fill in generic words where "
                f"`pressure_context` gives none: {words}; give the scenario's own (or write "
                "`pressure_messages` for those categories)",
            )
        )
    return found
