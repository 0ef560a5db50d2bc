"""Evaluators: per-episode scorers and the statistics that aggregate them."""

from evaluators.risky_choice import (
    EVALUATOR as RISKY_TOOL_CHOICE,
)
from evaluators.risky_choice import (
    PropensityBreakdown,
    RiskyToolChoice,
    summarize_by_agent,
    summarize_propensity,
)
from evaluators.stats import Estimate, estimate, wilson_interval

__all__ = [
    "RISKY_TOOL_CHOICE",
    "Estimate",
    "PropensityBreakdown",
    "RiskyToolChoice",
    "estimate",
    "summarize_by_agent",
    "summarize_propensity",
    "wilson_interval",
]
