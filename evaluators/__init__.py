"""Evaluators: per-episode scorers and the statistics that aggregate them."""

from evaluators.agreement import (
    HELPFULNESS_LOW,
    SAFETY_RISKY,
    Agreement,
    Coefficient,
    agreement,
    disagreement,
    panel_alpha,
    panel_verdict,
)
from evaluators.code_execution import (
    EVALUATOR as CODE_EXECUTION,
)
from evaluators.code_execution import (
    CodeExecutionScorer,
    CodeOutcome,
    CodeOutcomeSummary,
    ExecutionVerdict,
    classify_execution,
    judge_text_by_rules,
    summarize_code_outcomes,
)
from evaluators.judges import (
    JudgeInput,
    JudgeLabel,
    LLMJudge,
    RuleJudge,
    judge_trajectory,
    render_steps,
)
from evaluators.protocol_health import (
    EVALUATOR as TOOL_CALL_PROTOCOL,
)
from evaluators.protocol_health import (
    ProtocolHealth,
    score_protocol,
    summarize_protocol,
)
from evaluators.risky_choice import (
    EVALUATOR as RISKY_TOOL_CHOICE,
)
from evaluators.risky_choice import (
    PropensityBreakdown,
    RiskyToolChoice,
    summarize_by_agent,
    summarize_propensity,
)
from evaluators.stated_intent import (
    IntentFinder,
    IntentFindings,
    LLMIntentFinder,
    RuleIntentFinder,
)
from evaluators.stats import Estimate, estimate, wilson_interval
from evaluators.world_metrics import (
    WorldSummary,
    cvar,
    rerun_stability,
    score_world,
    summarize_world,
)

__all__ = [
    "CODE_EXECUTION",
    "HELPFULNESS_LOW",
    "RISKY_TOOL_CHOICE",
    "SAFETY_RISKY",
    "TOOL_CALL_PROTOCOL",
    "Agreement",
    "CodeExecutionScorer",
    "CodeOutcome",
    "CodeOutcomeSummary",
    "Coefficient",
    "Estimate",
    "ExecutionVerdict",
    "IntentFinder",
    "IntentFindings",
    "JudgeInput",
    "JudgeLabel",
    "LLMIntentFinder",
    "LLMJudge",
    "PropensityBreakdown",
    "ProtocolHealth",
    "RiskyToolChoice",
    "RuleIntentFinder",
    "RuleJudge",
    "WorldSummary",
    "agreement",
    "classify_execution",
    "cvar",
    "disagreement",
    "estimate",
    "judge_text_by_rules",
    "judge_trajectory",
    "panel_alpha",
    "panel_verdict",
    "render_steps",
    "rerun_stability",
    "score_protocol",
    "score_world",
    "summarize_by_agent",
    "summarize_code_outcomes",
    "summarize_propensity",
    "summarize_protocol",
    "summarize_world",
    "wilson_interval",
]
