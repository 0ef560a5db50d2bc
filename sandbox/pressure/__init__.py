"""Pressure: categories, levels, escalation schedules and our own message templates."""

from sandbox.pressure.engine import (
    ALL_CATEGORIES,
    BASELINE,
    MAX_LEVEL,
    MIXED,
    PressureCategory,
    PressureEngine,
    PressureMessage,
    PressureSchedule,
    PressureTemplates,
    default_templates,
    parse_category,
    plan_messages,
    template_context,
)

__all__ = [
    "ALL_CATEGORIES",
    "BASELINE",
    "MAX_LEVEL",
    "MIXED",
    "PressureCategory",
    "PressureEngine",
    "PressureMessage",
    "PressureSchedule",
    "PressureTemplates",
    "default_templates",
    "parse_category",
    "plan_messages",
    "template_context",
]
