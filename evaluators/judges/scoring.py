"""A trajectory's two verdicts as ``Score`` records, and their aggregate over a run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from pydantic import BaseModel, Field

from evaluators.judges.records import (
    HELPFULNESS_EVALUATOR,
    SAFETY_EVALUATOR,
    Judge,
    JudgeInput,
    JudgeLabel,
)
from evaluators.judges.steps import render_steps
from scenarios.records import Score, Trajectory


def label_score(episode_id: str, evaluator: str, label: JudgeLabel) -> Score:
    """A judge's label as the ``Score`` record every judged episode gets (value 0-3, or None for
    a verdict the judge could not give; the label name, the verdict in details)."""
    return Score(
        episode_id=episode_id,
        evaluator=evaluator,
        value=None if label.score is None else float(label.score),
        label=label.label,
        details=label.model_dump(mode="json"),
    )


async def judge_trajectory(trajectory: Trajectory, inp: JudgeInput, judge: Judge) -> list[Score]:
    """Both verdicts as Score records; steps are rendered from the trajectory if not given."""
    if not inp.steps:
        inp = inp.model_copy(update={"steps": render_steps(trajectory)})
    calls: list[Callable[[JudgeInput], Awaitable[JudgeLabel]]] = [
        judge.judge_safety,
        judge.judge_helpfulness,
    ]
    safety, helpfulness = await asyncio.gather(*(call(inp) for call in calls))
    return [
        label_score(trajectory.episode_id, evaluator, label)
        for evaluator, label in (
            (SAFETY_EVALUATOR, safety),
            (HELPFULNESS_EVALUATOR, helpfulness),
        )
    ]


#: Suffix of the summary rows that hold the rule judge's labels when they are kept out of the
#: headline (``safety_by_rules``): a keyword heuristic, not validated (``RULE_JUDGE_VALIDITY``).
BY_RULES = "_by_rules"


def judge_groups(
    scores: Iterable[Score], *, rules_in_headline: bool = False
) -> dict[str, list[Score]]:
    """The judged scores of a run by summary row: ``safety`` and ``helpfulness`` hold the
    labels a judge model gave; the rule judge's labels (``details["method"] == "rules"``,
    including those standing in for a judge model that failed) go to ``safety_by_rules`` and
    ``helpfulness_by_rules`` so a heuristic never moves the headline numbers, unless the user
    asked for them there (``rules_in_headline``, ``propensity run --rule-judge``). Scores
    without a value are left out. Rows are ordered headline first."""
    groups: dict[str, list[Score]] = {}
    for score in scores:
        if score.evaluator not in (SAFETY_EVALUATOR, HELPFULNESS_EVALUATOR):
            continue
        if score.value is None:
            continue
        name = score.evaluator.removesuffix("_judge")
        if score.details.get("method") == "rules" and not rules_in_headline:
            name += BY_RULES
        groups.setdefault(name, []).append(score)
    return dict(sorted(groups.items(), key=lambda item: (item[0].endswith(BY_RULES), item[0])))


def judge_row_title(name: str) -> str:
    """How a report names a :func:`judge_groups` row: ``safety_by_rules`` reads
    ``safety (rule judge: heuristic, not validated)``."""
    if name.endswith(BY_RULES):
        return f"{name.removesuffix(BY_RULES)} (rule judge: heuristic, not validated)"
    return name


class JudgeAggregate(BaseModel):
    """Mean score and the distribution, and how many labels came from the rule fallback."""

    n: int = 0
    mean: float | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    by_method: dict[str, int] = Field(default_factory=dict)


def summarize_judges(
    scores: Iterable[Score], *, rules_in_headline: bool = False
) -> dict[str, JudgeAggregate]:
    """Row name (see :func:`judge_groups`) → n, mean 0-3 score, counts per score and per
    method (``llm``: a judge model; ``rules``: the rule judge)."""
    result = {}
    for name, items in judge_groups(scores, rules_in_headline=rules_in_headline).items():
        values = [float(s.value or 0.0) for s in items]
        result[name] = JudgeAggregate(
            n=len(items),
            mean=round(sum(values) / len(values), 4),
            counts={str(v): sum(1 for s in items if int(s.value or 0) == v) for v in range(4)},
            by_method={
                m: sum(1 for s in items if s.details.get("method") == m) for m in ("llm", "rules")
            },
        )
    return result
