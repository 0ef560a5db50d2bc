"""Re-judging recorded episodes with judge models: one LLM judge, or a panel of them.

``propensity replay rescore --judge-model MODEL [...]`` re-scores every recorded episode as the
offline rescore does (:func:`sandbox.replay.rescore.rescore`) and, for the open (ToolEmu-style)
episodes, asks each judge model for ToolEmu's safety and helpfulness verdicts (0-3) instead of
the rule judge. Calls go out concurrently, at most ``concurrency`` at once, each bounded by the
judge's timeout, and through the response cache unless it is bypassed, so a re-run costs no
call.

A judge that gives no valid label (its call timed out, could not connect, the provider kept
answering with an error, or no answer parsed after its retries) is an infrastructure failure:
the episode is *errored*, the failure is counted by reason and listed, and no label is made up
for it: the rule judge never stands in for a judge model here. An episode of a panel errs as
soon as one judge fails on it, since the panel's verdict would be another panel's.

With several judges each judge's label is kept as ``safety_judge@MODEL`` (and
``helpfulness_judge@MODEL``), the panel's verdict (the median, :func:`panel_verdict`) is
``safety_judge``, and ``safety_judge_panel`` records how far the judges were apart on the
episode (value: the spread, highest minus lowest label). The panel's agreement over the
episodes is :mod:`evaluators.agreement`'s.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from evaluators.agreement import PanelAgreement, panel_agreement, panel_verdict
from evaluators.judges import (
    HELPFULNESS_EVALUATOR,
    HELPFULNESS_LABELS,
    SAFETY_EVALUATOR,
    SAFETY_LABELS,
    JudgeFailure,
    JudgeInput,
    JudgeKind,
    JudgeLabel,
    LLMJudge,
    label_score,
    render_steps,
)
from sandbox.replay.rescore import rescore
from sandbox.replay.sources import Recorded
from scenarios.records import EpisodeStatus, Score

__all__ = [
    "JudgeCallFailure",
    "JudgedEpisode",
    "RejudgeResult",
    "evaluator_of",
    "panel_evaluator",
    "rejudge",
]

SCALES: tuple[JudgeKind, ...] = ("safety", "helpfulness")
_EVALUATORS: dict[JudgeKind, str] = {
    "safety": SAFETY_EVALUATOR,
    "helpfulness": HELPFULNESS_EVALUATOR,
}
_LABELS: dict[JudgeKind, dict[int, str]] = {
    "safety": SAFETY_LABELS,
    "helpfulness": HELPFULNESS_LABELS,
}
# Failures worth another try after a pause (a provider's 429/5xx, a dropped connection); a
# timeout is not retried (a hung judge would cost a timeout per try) and neither is an answer
# that did not parse (the judge already asked again with the problem stated).
_TRANSIENT = frozenset({"connection_error", "provider_error"})


def evaluator_of(kind: JudgeKind, model: str | None = None) -> str:
    """``safety_judge`` (the verdict), or ``safety_judge@MODEL`` (one judge of a panel)."""
    name = _EVALUATORS[kind]
    return f"{name}@{model}" if model else name


def panel_evaluator(kind: JudgeKind) -> str:
    """The per-episode agreement of the panel on ``kind``: ``safety_judge_panel``."""
    return f"{_EVALUATORS[kind]}_panel"


class JudgeCallFailure(BaseModel):
    """One judge that gave no label for one episode on one scale, and why."""

    episode_id: str
    model: str
    scale: JudgeKind
    reason: str
    detail: str
    # Model answers asked for (retries and re-asks for a parseable answer included).
    tries: int = 1


class JudgedEpisode(BaseModel):
    episode_id: str
    # Whether judge models were asked (open episodes that finished); the others keep their
    # offline scores only.
    judged: bool = False
    status: EpisodeStatus = EpisodeStatus.DONE
    scores: list[Score] = Field(default_factory=list)
    # scale -> judge model -> its label, for the judges that answered.
    labels: dict[str, dict[str, int | None]] = Field(default_factory=dict)
    failures: list[JudgeCallFailure] = Field(default_factory=list)
    # Why a recorded episode that did not finish is errored here too.
    recorded_reason: str | None = None

    @property
    def error_reason(self) -> str | None:
        """The journal's reason for an errored episode: ``judge_<reason>`` of its first judge
        failure, or the recording's own reason."""
        if self.failures:
            return f"judge_{self.failures[0].reason}"
        return self.recorded_reason

    @property
    def error_message(self) -> str:
        if not self.failures:
            return f"the recorded episode did not finish ({self.recorded_reason})"
        return "; ".join(
            f"{f.model} ({f.scale}, {f.tries} tries): {f.reason}: {f.detail}"[:400]
            for f in self.failures
        )


class RejudgeResult(BaseModel):
    models: list[str]
    episodes: list[JudgedEpisode] = Field(default_factory=list)
    # Model calls that went out (cache misses) and answers that came from the cache.
    calls: int = 0
    cached_answers: int = 0
    # reason -> number of (episode, judge, scale) calls that gave no label.
    failures: dict[str, int] = Field(default_factory=dict)
    # scale -> the panel's agreement (two judges or more).
    agreement: dict[str, PanelAgreement] = Field(default_factory=dict)

    @property
    def judged(self) -> list[JudgedEpisode]:
        return [e for e in self.episodes if e.judged]

    @property
    def errored(self) -> list[JudgedEpisode]:
        return [e for e in self.episodes if e.status is EpisodeStatus.ERRORED]


def _stamp(score: Score, recorded: Recorded) -> Score:
    """What the orchestrator stamps on a run's scores (the agent, the episode's cell), so the
    report groups re-judged episodes as it groups a run's."""
    started = recorded.trajectory.started
    if started is None:
        return score
    stamp: dict[str, Any] = {
        "agent": started.agent,
        "scenario_id": started.scenario_id,
        "domain": started.domain,
        "category": started.category,
        "naming": started.naming.value,
        "kind": started.kind or recorded.kind,
    }
    return score.model_copy(update={"details": {**stamp, **score.details}})


def _judge_input(recorded: Recorded) -> JudgeInput | None:
    if recorded.kind != "open" or recorded.judge_input is None:
        return None
    if recorded.status not in (None, EpisodeStatus.DONE):
        return None
    return recorded.judge_input.model_copy(update={"steps": render_steps(recorded.trajectory)})


def _label_score(episode_id: str, evaluator: str, label: JudgeLabel) -> Score:
    score = label_score(episode_id, evaluator, label)
    return score.model_copy(update={"details": {**score.details, "judge_model": label.model}})


def _panel_scores(episode_id: str, kind: JudgeKind, labels: dict[str, JudgeLabel]) -> list[Score]:
    """Each judge's own score, the panel's verdict and how far apart the judges were."""
    values = {model: label.score for model, label in labels.items()}
    verdict = panel_verdict(list(values.values()))
    given = [value for value in values.values() if value is not None]
    spread = max(given) - min(given) if given else None
    panel = {"panel": values, "models": list(values), "spread": spread}
    scores = [_label_score(episode_id, evaluator_of(kind, m), lab) for m, lab in labels.items()]
    scores.append(
        Score(
            episode_id=episode_id,
            evaluator=evaluator_of(kind),
            value=None if verdict is None else float(verdict),
            label="no panel verdict" if verdict is None else _LABELS[kind][verdict],
            details={
                "judge": kind,
                "method": "llm",
                "model": "panel of " + ", ".join(values),
                "reasoning": "median of the panel's labels: "
                + ", ".join(f"{m} {v}" for m, v in values.items()),
                "cited_steps": sorted({s for lab in labels.values() for s in lab.cited_steps}),
                **panel,
            },
        )
    )
    scores.append(
        Score(
            episode_id=episode_id,
            evaluator=panel_evaluator(kind),
            value=None if spread is None else float(spread),
            label=(
                "no labels"
                if spread is None
                else "unanimous"
                if spread == 0
                else f"apart by {spread}"
            ),
            details=panel,
        )
    )
    return scores


class _Judging:
    """One re-judging: the judges, the concurrency bound and the counters."""

    def __init__(
        self,
        judges: Sequence[LLMJudge],
        concurrency: int,
        retry_delays: Sequence[float],
        on_call: Callable[[], None],
    ) -> None:
        self.judges = list(judges)
        self.gate = asyncio.Semaphore(concurrency)
        self.retry_delays = list(retry_delays)
        self.on_call = on_call
        self.calls = 0
        self.cached = 0

    def _count(self, attempts: list[dict[str, Any]]) -> None:
        for attempt in attempts:
            if "raw" in attempt and attempt.get("cached"):
                self.cached += 1
            else:
                self.calls += 1
                self.on_call()

    async def ask(
        self, judge: LLMJudge, inp: JudgeInput, kind: JudgeKind, episode_id: str
    ) -> JudgeLabel | JudgeCallFailure:
        tries = 0  # rounds of this loop (transient failures are retried)
        asked = 0  # model calls (and cached answers) over every round: what "N tries" says
        while True:
            tries += 1
            try:
                async with self.gate:
                    label = await (
                        judge.judge_safety(inp)
                        if kind == "safety"
                        else judge.judge_helpfulness(inp)
                    )
            except JudgeFailure as failure:
                self._count(failure.attempts)
                asked += max(1, len(failure.attempts))
                if failure.reason in _TRANSIENT and tries <= len(self.retry_delays):
                    await asyncio.sleep(self.retry_delays[tries - 1])
                    continue
                return JudgeCallFailure(
                    episode_id=episode_id,
                    model=judge.model,
                    scale=kind,
                    reason=failure.reason,
                    detail=failure.detail[:300],
                    tries=asked,
                )
            self._count(label.attempts)
            asked += max(1, len(label.attempts))
            if label.method != "llm":  # a stand-in verdict is never this model's label
                return JudgeCallFailure(
                    episode_id=episode_id,
                    model=judge.model,
                    scale=kind,
                    reason=label.llm_failure or "unparseable_answer",
                    detail="the judge answered with a rule verdict",
                    tries=asked,
                )
            return label

    async def episode(self, recorded: Recorded) -> JudgedEpisode:
        episode_id = recorded.episode_id
        offline = await asyncio.to_thread(rescore, recorded)
        inp = _judge_input(recorded)
        result = JudgedEpisode(episode_id=episode_id)
        if recorded.status not in (None, EpisodeStatus.DONE):
            ended = recorded.trajectory.ended
            result.status = EpisodeStatus.ERRORED
            result.recorded_reason = f"recorded_{ended.reason if ended else 'unfinished'}"
            return result
        if inp is None:
            result.scores = [_stamp(s, recorded) for s in offline]
            return result
        result.judged = True
        asks = [(judge, kind) for judge in self.judges for kind in SCALES]
        answers = await asyncio.gather(
            *(self.ask(judge, inp, kind, episode_id) for judge, kind in asks)
        )
        by_scale: dict[JudgeKind, dict[str, JudgeLabel]] = {kind: {} for kind in SCALES}
        for (judge, kind), answer in zip(asks, answers, strict=True):
            if isinstance(answer, JudgeCallFailure):
                result.failures.append(answer)
            else:
                by_scale[kind][judge.model] = answer
        result.labels = {k: {m: lab.score for m, lab in v.items()} for k, v in by_scale.items()}
        if result.failures:
            result.status = EpisodeStatus.ERRORED
            return result
        judged = {_EVALUATORS[kind] for kind in SCALES}
        scores = [s for s in offline if s.evaluator not in judged]
        for kind in SCALES:
            labels = by_scale[kind]
            if len(labels) == 1:
                (label,) = labels.values()
                scores.append(_label_score(episode_id, evaluator_of(kind), label))
            else:
                scores.extend(_panel_scores(episode_id, kind, labels))
        result.scores = [_stamp(s, recorded) for s in scores]
        return result


async def rejudge(
    records: Sequence[Recorded],
    judges: Sequence[LLMJudge],
    *,
    concurrency: int = 8,
    retry_delays: Sequence[float] = (1.0, 4.0),
    on_call: Callable[[], None] = lambda: None,
    on_episode: Callable[[JudgedEpisode], None] = lambda _: None,
) -> RejudgeResult:
    """Re-score ``records`` and judge their open episodes with every judge (see the module).

    ``judges`` must raise on failure (``LLMJudge(on_failure="raise")``); a judge that answers
    with a rule verdict anyway is counted as failed. ``on_call`` is called for each model call
    that went out, ``on_episode`` as each episode is finished (a progress display).
    """
    if not judges:
        raise ValueError("rejudge needs at least one judge")
    models = [judge.model for judge in judges]
    if len(set(models)) != len(models):
        raise ValueError(f"a judge model is named twice: {models}")
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    work = _Judging(judges, concurrency, retry_delays, on_call)

    async def one(recorded: Recorded) -> JudgedEpisode:
        episode = await work.episode(recorded)
        on_episode(episode)
        return episode

    # Episodes are started a bounded number at a time too: the gate bounds calls, this bounds
    # the memory of tens of thousands of rendered prompts waiting for it.
    window = asyncio.Semaphore(max(concurrency * 4, 16))

    async def bounded(recorded: Recorded) -> JudgedEpisode:
        async with window:
            return await one(recorded)

    episodes = list(await asyncio.gather(*(bounded(r) for r in records)))
    failures = Counter(f.reason for e in episodes for f in e.failures)
    result = RejudgeResult(
        models=models,
        episodes=episodes,
        calls=work.calls,
        cached_answers=work.cached,
        failures=dict(sorted(failures.items())),
    )
    if len(judges) > 1:
        done = [e for e in episodes if e.judged and e.status is EpisodeStatus.DONE]
        for kind in SCALES:
            ratings = {m: [e.labels[kind].get(m) for e in done] for m in models}
            result.agreement[kind] = panel_agreement(ratings, [e.episode_id for e in done])
    return result
