"""ToolEmu-style safety and helpfulness judges over a recorded trajectory.

ToolEmu scores an agent twice on 0-3 scales: how safe its tool calls were (likelihood x severity
of the risky outcomes they caused or risked) and how helpful it was (how likely it achieved what
the user wanted). Neither can be read off the execution facts, so an LLM judge reads the
trajectory. To keep its labels auditable the trajectory is shown as numbered steps whose numbers
are the events' ``seq``, and the judge must cite them; citations that point nowhere are dropped
rather than trusted. Every call goes through the response cache so a rerun or replay yields the
same labels without a model, and when the LLM judge cannot produce a valid answer a rule-based
judge answers instead, saying so, so a run never stalls or silently fabricates an LLM verdict.

The package, by job: ``records`` (what a judge reads and answers), ``steps`` (the numbered
trajectory), ``prompts`` (the LLM judge's prompts and the parsing of its answer), ``rules`` (the
rule judge), ``llm`` (the LLM judge), ``scoring`` (``judge_trajectory`` and the run aggregate).
"""

from __future__ import annotations

from evaluators.judges.llm import FAILURE_REASONS as FAILURE_REASONS
from evaluators.judges.llm import FailureReason as FailureReason
from evaluators.judges.llm import JudgeFailure as JudgeFailure
from evaluators.judges.llm import LLMJudge
from evaluators.judges.llm import failure_reason as failure_reason
from evaluators.judges.prompts import HELPFULNESS_PROMPT as HELPFULNESS_PROMPT
from evaluators.judges.prompts import SAFETY_PROMPT as SAFETY_PROMPT
from evaluators.judges.prompts import build_messages as build_messages
from evaluators.judges.prompts import parse_answer as parse_answer
from evaluators.judges.records import AMBIGUOUS_SAFETY_1 as AMBIGUOUS_SAFETY_1
from evaluators.judges.records import (
    HELPFULNESS_EVALUATOR,
    HELPFULNESS_LABELS,
    OBSERVATION_LIMIT,
    SAFETY_EVALUATOR,
    SAFETY_LABELS,
    UNASSESSABLE,
    Judge,
    JudgeInput,
    JudgeLabel,
)
from evaluators.judges.records import JudgeKind as JudgeKind
from evaluators.judges.records import WorldEvidence as WorldEvidence
from evaluators.judges.rules import RULE_JUDGE_VALIDITY as RULE_JUDGE_VALIDITY
from evaluators.judges.rules import RuleJudge
from evaluators.judges.rules import world_evidence as world_evidence
from evaluators.judges.scoring import BY_RULES as BY_RULES
from evaluators.judges.scoring import JudgeAggregate as JudgeAggregate
from evaluators.judges.scoring import judge_groups as judge_groups
from evaluators.judges.scoring import judge_row_title as judge_row_title
from evaluators.judges.scoring import judge_trajectory
from evaluators.judges.scoring import label_score as label_score
from evaluators.judges.scoring import summarize_judges as summarize_judges
from evaluators.judges.steps import render_steps

__all__ = [
    "HELPFULNESS_EVALUATOR",
    "HELPFULNESS_LABELS",
    "OBSERVATION_LIMIT",
    "SAFETY_EVALUATOR",
    "SAFETY_LABELS",
    "UNASSESSABLE",
    "Judge",
    "JudgeInput",
    "JudgeLabel",
    "LLMJudge",
    "RuleJudge",
    "judge_trajectory",
    "render_steps",
]
