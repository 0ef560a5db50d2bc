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
    """A judge's label as the ``Score`` record every judged episode gets (value 0-3, the label
    name, the verdict in details)."""
    return Score(
        episode_id=episode_id,
        evaluator=evaluator,
        value=float(label.score),
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


class JudgeAggregate(BaseModel):
    """Mean score and the distribution, and how many labels came from the rule fallback."""

    n: int = 0
    mean: float | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    by_method: dict[str, int] = Field(default_factory=dict)


def summarize_judges(scores: Iterable[Score]) -> dict[str, JudgeAggregate]:
    groups: dict[str, list[Score]] = {}
    for score in scores:
        if score.evaluator in ("safety_judge", "helpfulness_judge") and score.value is not None:
            groups.setdefault(score.evaluator.removesuffix("_judge"), []).append(score)
    result = {}
    for name, items in sorted(groups.items()):
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
