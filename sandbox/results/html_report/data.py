"""The report's numbers, each kept together with the episodes behind it.

The text report prints estimates; the HTML report must also let a reader click any number and
see the transcripts it was computed from. So every figure here is a :class:`Rate`: an estimate
plus a *cell*, the list of episodes in its denominator. Each rate is computed from the very
episode list its cell holds (``estimate(k, len(ids))``), so a number and the episodes it links
to cannot disagree; the definitions are those of ``evaluators`` (and tests check that they
reproduce ``build_summary``).

Only scores of episodes whose latest journal state is *done* enter any rate: errored episodes
are infrastructure failures and are listed apart, exactly as ``sandbox.results.summary`` does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from evaluators import CodeOutcome, Estimate, estimate
from evaluators.code_execution import EVALUATOR as CODE_EXECUTION
from evaluators.injection_metrics import ATTACK_RESISTED, ATTACK_SUCCEEDED, CLEAN
from evaluators.injection_metrics import EVALUATOR as INJECTION
from evaluators.judges import HELPFULNESS_EVALUATOR, SAFETY_EVALUATOR, judge_groups
from evaluators.protocol_health import EVALUATOR as TOOL_CALL_PROTOCOL
from evaluators.risky_choice import EVALUATOR as RISKY_TOOL_CHOICE
from evaluators.risky_choice import UNOBSERVED, cumulative_by_level, episode_category
from evaluators.world_metrics import EVALUATOR as WORLD_STATE
from evaluators.world_metrics import cvar
from sandbox.pressure import ALL_CATEGORIES, BASELINE
from sandbox.results.store import RunStore
from sandbox.results.summary import (
    EvaluatorAggregate,
    RunSummary,
    build_summary,
    of_builtin_kind,
    other_key,
)
from scenarios.records import EpisodeStatus, JournalEntry, Score

PRESSURED = "under pressure"
JUDGES = (SAFETY_EVALUATOR, HELPFULNESS_EVALUATOR)


@dataclass(frozen=True)
class Cell:
    """A set of episodes a number was computed from; the viewer filters to them on click."""

    label: str
    episodes: list[int]


@dataclass(frozen=True)
class Rate:
    """An estimate and the index of the cell holding the episodes of its denominator."""

    estimate: Estimate
    cell: int


@dataclass(frozen=True)
class EpisodeInfo:
    """What the viewer's list and filters need to know about one episode."""

    id: str
    scenario: str
    domain: str
    agent: str
    category: str
    naming: str
    status: str
    reason: str
    labels: dict[str, str]


@dataclass(frozen=True)
class WorldRow:
    n: int
    intention: Rate
    completion: Rate
    task_completion: Rate
    gap: float | None
    severity_cvar: float | None


@dataclass(frozen=True)
class JudgeRow:
    n: int
    mean: float | None
    # Score value ("0".."3") -> share of the judge's labels with that score.
    counts: dict[str, Rate]


@dataclass(frozen=True)
class OtherScoreRow:
    """One agent's scores from an evaluator without a section of its own: the aggregate of
    ``summary.json``'s ``other_scores`` and the cell of the episodes those scores are of."""

    aggregate: EvaluatorAggregate
    episodes: int
    cell: int


@dataclass(frozen=True)
class ErroredEpisode:
    id: str
    index: int
    reason: str
    error: str
    attempt: int


@dataclass
class ReportData:
    run_id: str
    suite: str
    started_at: float
    finished_at: float | None
    episodes_total: int
    scored: int
    errored: int
    incomplete: int
    llm_calls: int
    agents: list[str]
    # Pressure categories present, in the canonical order; the baseline is not among them.
    categories: list[str]
    headline: dict[str, dict[str, Rate]]
    by_category: dict[str, dict[str, Rate]]
    by_level: dict[str, dict[int, Rate]]
    by_category_level: dict[str, dict[str, dict[int, Rate]]]
    by_domain: dict[str, dict[str, Rate]]
    by_naming: dict[str, dict[str, Rate]]
    world: dict[str, WorldRow] | None
    # Attacked episodes: agent -> utility / utility_under_attack / attack_success / flagged.
    injections: dict[str, dict[str, Rate]]
    # "resource" / "framing" / "agent" -> group -> outcome -> share.
    code: dict[str, dict[str, dict[str, Rate]]]
    code_outcomes: list[str]
    judges: dict[str, JudgeRow]
    # agent -> "episodes with native calls" / ... -> Rate (clickable episode lists).
    protocol: dict[str, dict[str, Rate]]
    # agent -> risky-choice episodes that could not be observed (in no rate).
    unobserved: dict[str, list[str]]
    errored_episodes: list[ErroredEpisode]
    error_reasons: dict[str, int]
    incomplete_episodes: list[str]
    episodes: list[EpisodeInfo]
    cells: list[Cell] = field(default_factory=list)
    summary: RunSummary | None = None
    # evaluator -> agent -> row, for evaluators the summary has no section for (a plugin
    # kind's scorer): summary.json's other_scores, with the episodes behind each row.
    other_scores: dict[str, dict[str, OtherScoreRow]] = field(default_factory=dict)
    # Episodes the journal calls done whose scores are missing (in no figure, not scored).
    unscored_episodes: list[str] = field(default_factory=list)


class _Cells:
    """Registers episode lists and hands out the index a rendered number refers to."""

    def __init__(self, index: dict[str, int]) -> None:
        self.index = index
        self.cells: list[Cell] = []

    def add(self, label: str, episode_ids: Iterable[str]) -> int:
        self.cells.append(Cell(label=label, episodes=sorted(self.index[e] for e in episode_ids)))
        return len(self.cells) - 1

    def rate(self, label: str, scores: list[Score], hit: Callable[[Score], bool]) -> Rate:
        k = sum(1 for s in scores if hit(s))
        return Rate(estimate(k, len(scores)), self.add(label, (s.episode_id for s in scores)))


def _called(score: Score) -> bool:
    return bool(score.value)


def _flag(key: str) -> Callable[[Score], bool]:
    return lambda score: bool(score.details.get(key))


def _flag_count(key: str) -> Callable[[Score], bool]:
    """True when a count (or a mapping of counts) in the details is non-zero."""

    def hit(score: Score) -> bool:
        value = score.details.get(key)
        if isinstance(value, dict):
            return any(value.values())
        return bool(value)

    return hit


def _labelled(label: str) -> Callable[[Score], bool]:
    return lambda score: score.label == label


def _scored(value: int) -> Callable[[Score], bool]:
    return lambda score: int(score.value or 0) == value


def _agent(score: Score) -> str:
    return str(score.details.get("agent"))


def _group(scores: Iterable[Score], key: str) -> dict[str, list[Score]]:
    groups: dict[str, list[Score]] = defaultdict(list)
    for score in scores:
        groups[str(score.details.get(key))].append(score)
    return {name: groups[name] for name in sorted(groups)}


def _cumulative(
    cells: _Cells, label: str, pressured: list[Score], schedule: list[int]
) -> dict[int, Rate]:
    """Propensity *by* each level of the schedule, exactly as ``evaluators.risky_choice``
    defines it (``BY_LEVEL_DEFINITION``, one shared implementation): every pressured episode is
    in every level's denominator, which is the cell."""
    result: dict[int, Rate] = {}
    for level, count in cumulative_by_level(pressured, schedule).items():
        cell = cells.add(f"{label} · by level {level}", count.episodes)
        result[level] = Rate(count.estimate(), cell)
    return result


def _ordered_categories(present: Iterable[str]) -> list[str]:
    keys = set(present)
    canonical = [c for c in ALL_CATEGORIES if c in keys]
    return canonical + sorted(keys - set(canonical))


def _episode_infos(
    store: RunStore, states: dict[str, JournalEntry], latest: dict[tuple[str, str], Score]
) -> list[EpisodeInfo]:
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    meta: dict[str, dict[str, str]] = {}
    for (episode_id, evaluator), score in latest.items():
        labels[episode_id][evaluator] = str(score.label)
        if evaluator == RISKY_TOOL_CHOICE or episode_id not in meta:
            meta[episode_id] = {
                "scenario": str(
                    score.details.get("scenario_id") or score.details.get("task_id") or ""
                ),
                "domain": str(score.details.get("domain") or ""),
                "agent": str(score.details.get("agent") or ""),
                "category": str(score.details.get("category") or ""),
                "naming": str(score.details.get("naming") or ""),
            }
    infos = []
    for episode_id in sorted(states):
        entry = states[episode_id]
        known = meta.get(episode_id)
        if known is None or not known["category"]:
            known = _meta_from_trajectory(store, episode_id) or known or {}
        infos.append(
            EpisodeInfo(
                id=episode_id,
                scenario=known.get("scenario", ""),
                domain=known.get("domain", ""),
                agent=known.get("agent", ""),
                category=known.get("category", ""),
                naming=known.get("naming", ""),
                status=entry.status.value,
                reason=entry.reason or "",
                labels=dict(sorted(labels.get(episode_id, {}).items())),
            )
        )
    return infos


def _meta_from_trajectory(store: RunStore, episode_id: str) -> dict[str, str] | None:
    """Errored and unscored episodes have no scores: their first event says what they were."""
    path = store.trajectory_path(episode_id)
    if not path.exists():
        return None
    try:
        trajectory = store.read_trajectory(episode_id)
    except ValueError:
        return None
    started = trajectory.started
    if started is None:
        return None
    return {
        "scenario": started.scenario_id,
        "domain": started.domain,
        "agent": started.agent,
        # A branched episode's category is the pressure it was shown, as its score says.
        "category": episode_category(trajectory) or started.category,
        "naming": started.naming.value,
    }


def latest_scores(store: RunStore, done: set[str]) -> dict[tuple[str, str], Score]:
    """One score per (episode, evaluator), the last written, for episodes that finished."""
    latest: dict[tuple[str, str], Score] = {}
    for score in store.read_scores():
        if score.episode_id in done:
            latest[(score.episode_id, score.evaluator)] = score
    return latest


def collect(store: RunStore) -> ReportData:
    """Every number of the report, from the run directory's records."""
    manifest = store.read_manifest()
    schedule = list(manifest.config.schedule.levels)
    states = store.latest_states()
    summary = build_summary(store)
    done = {e for e, s in states.items() if s.status is EpisodeStatus.DONE}
    latest = latest_scores(store, done)
    infos = _episode_infos(store, states, latest)
    cells = _Cells({info.id: i for i, info in enumerate(infos)})

    # Attacked episodes are shown in the injection section only (as the summary counts them).
    attacked = {
        s.episode_id
        for (_, ev), s in latest.items()
        if ev == INJECTION and s.details.get("attacked")
    }

    def of(evaluator: str) -> list[Score]:
        """The evaluator's scores; a plugin kind's only for protocol health (as the summary);
        an attacked episode's only for the injection section and protocol health."""
        return [
            s
            for (_, ev), s in sorted(latest.items())
            if ev == evaluator
            and (ev == TOOL_CALL_PROTOCOL or of_builtin_kind(s))
            and (ev in (INJECTION, TOOL_CALL_PROTOCOL) or s.episode_id not in attacked)
        ]

    all_risky = of(RISKY_TOOL_CHOICE)
    # Unobserved choices (unreadable call text) enter no rate; they are listed apart.
    risky = [s for s in all_risky if s.label != UNOBSERVED]
    unobserved: dict[str, list[str]] = {}
    for score in all_risky:
        if score.label == UNOBSERVED:
            unobserved.setdefault(_agent(score), []).append(score.episode_id)
    protocol: dict[str, dict[str, Rate]] = {}
    for agent_name, scores in _group(of(TOOL_CALL_PROTOCOL), "agent").items():
        protocol[agent_name] = {
            label: cells.rate(f"{agent_name} · {label}", scores, hit)
            for label, hit in (
                ("episodes with native calls", _flag_count("native_calls")),
                ("episodes with calls read from text", _flag_count("recovered_calls")),
                ("episodes with unreadable call text", _flag_count("unparsed_calls")),
                ("episodes with no tool call", _flag("no_tool_call")),
            )
        }
    by_agent = _group(risky, "agent")
    agents = sorted((set(by_agent) | {_agent(s) for s in latest.values()}) - {"None"})
    pressured_all = [s for s in risky if s.details.get("category") != BASELINE]
    categories = _ordered_categories(str(s.details.get("category")) for s in pressured_all)

    headline: dict[str, dict[str, Rate]] = {}
    by_category: dict[str, dict[str, Rate]] = {}
    by_level: dict[str, dict[int, Rate]] = {}
    by_domain: dict[str, dict[str, Rate]] = {}
    by_naming: dict[str, dict[str, Rate]] = {}
    by_category_level: dict[str, dict[str, dict[int, Rate]]] = {c: {} for c in categories}
    for agent, scores in by_agent.items():
        baseline = [s for s in scores if s.details.get("category") == BASELINE]
        pressured = [s for s in scores if s.details.get("category") != BASELINE]
        headline[agent] = {
            PRESSURED: cells.rate(f"{agent} · under pressure", pressured, _called),
            BASELINE: cells.rate(f"{agent} · baseline (no pressure)", baseline, _called),
        }
        groups = _group(pressured, "category")
        by_category[agent] = {}
        if baseline:
            by_category[agent][BASELINE] = headline[agent][BASELINE]
        for category in categories:
            if category in groups:
                by_category[agent][category] = cells.rate(
                    f"{agent} · {category}", groups[category], _called
                )
                by_category_level[category][agent] = _cumulative(
                    cells, f"{agent} · {category}", groups[category], schedule
                )
        by_level[agent] = _cumulative(cells, f"{agent} · all categories", pressured, schedule)
        by_domain[agent] = {
            d: cells.rate(f"{agent} · domain {d}", g, _called)
            for d, g in _group(pressured, "domain").items()
        }
        by_naming[agent] = {
            n: cells.rate(f"{agent} · {n} naming", g, _called)
            for n, g in _group(pressured, "naming").items()
        }

    # Unobserved intention (unreadable call text) enters no rate, as in summary.json.
    world_scores = [s for s in of(WORLD_STATE) if s.label != UNOBSERVED]
    world: dict[str, WorldRow] | None = None
    if world_scores:
        world = {}
        for agent, scores in _group(world_scores, "agent").items():
            rates = {
                key: cells.rate(
                    f"{agent} · world {key.replace('_', ' ')}",
                    scores,
                    _flag(key),
                )
                for key in ("intention", "completion", "task_completion")
            }
            intention, completion = rates["intention"].estimate, rates["completion"].estimate
            severities = [float(s.details.get("max_severity_reached") or 0.0) for s in scores]
            world[agent] = WorldRow(
                n=len(scores),
                intention=rates["intention"],
                completion=rates["completion"],
                task_completion=rates["task_completion"],
                gap=(
                    intention.value - completion.value
                    if intention.value is not None and completion.value is not None
                    else None
                ),
                severity_cvar=cvar(severities) if severities else None,
            )

    code_scores = of(CODE_EXECUTION)
    outcomes = [o.value for o in CodeOutcome]
    code: dict[str, dict[str, dict[str, Rate]]] = {}
    if code_scores:
        for key in ("resource", "framing", "agent"):
            code[key] = {
                group: {
                    outcome: cells.rate(
                        f"code {key} {group} · {outcome}",
                        scores,
                        _labelled(outcome),
                    )
                    for outcome in outcomes
                }
                for group, scores in _group(code_scores, key).items()
            }

    injections: dict[str, dict[str, Rate]] = {}
    for group, scores in _group(of(INJECTION), "agent").items():
        clean = [s for s in scores if s.label == CLEAN]
        delivered = [s for s in scores if s.label in (ATTACK_SUCCEEDED, ATTACK_RESISTED)]
        injections[group] = {
            "utility": cells.rate(
                f"{group} · utility (no attack)",
                [s for s in clean if s.details.get("utility") is not None],
                _flag("utility"),
            ),
            "utility_under_attack": cells.rate(
                f"{group} · utility under attack",
                [s for s in delivered if s.details.get("utility") is not None],
                _flag("utility"),
            ),
            "attack_success": cells.rate(
                f"{group} · attack success", delivered, _labelled(ATTACK_SUCCEEDED)
            ),
            "flagged": cells.rate(f"{group} · flagged the injection", delivered, _flag("flagged")),
        }

    judges: dict[str, JudgeRow] = {}
    judged = (s for evaluator in JUDGES for s in of(evaluator))
    for name, scores in judge_groups(judged, rules_in_headline=manifest.config.rule_judge).items():
        judges[name] = JudgeRow(
            n=len(scores),
            mean=round(sum(float(s.value or 0.0) for s in scores) / len(scores), 4),
            counts={
                str(v): cells.rate(
                    f"{name} judge · score {v}",
                    scores,
                    _scored(v),
                )
                for v in range(4)
            },
        )

    # Grouped as summarize_other_scores groups them (agent "unknown" when a score names none).
    other_episodes: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (episode_id, _), score in latest.items():
        where = other_key(score)
        if where is not None:
            agent = str(score.details.get("agent", "unknown"))
            other_episodes[(where, agent)].add(episode_id)
    other_scores: dict[str, dict[str, OtherScoreRow]] = {}
    for evaluator, per_agent in summary.other_scores.items():
        other_scores[evaluator] = {}
        for agent, aggregate in per_agent.items():
            ids = other_episodes.get((evaluator, agent), set())
            other_scores[evaluator][agent] = OtherScoreRow(
                aggregate=aggregate,
                episodes=len(ids),
                cell=cells.add(f"{evaluator} · {agent}", ids),
            )

    errored = [
        ErroredEpisode(
            id=e,
            index=cells.index[e],
            reason=states[e].reason or "error",
            error=states[e].error or "",
            attempt=states[e].attempt,
        )
        for e in sorted(e for e, s in states.items() if s.status is EpisodeStatus.ERRORED)
    ]
    return ReportData(
        run_id=manifest.run_id,
        suite=manifest.pack,
        started_at=manifest.started_at,
        finished_at=manifest.finished_at,
        episodes_total=manifest.episodes_total,
        scored=summary.scored,
        errored=len(errored),
        incomplete=summary.incomplete,
        llm_calls=summary.llm_calls,
        agents=agents,
        categories=categories,
        headline=headline,
        by_category=by_category,
        by_level=by_level,
        by_category_level={c: v for c, v in by_category_level.items() if v},
        by_domain=by_domain,
        by_naming=by_naming,
        world=world,
        code=code,
        code_outcomes=outcomes,
        judges=judges,
        injections=injections,
        protocol=protocol,
        unobserved=unobserved,
        errored_episodes=errored,
        error_reasons=dict(sorted(summary.errors.items())),
        incomplete_episodes=sorted(
            e
            for e, s in states.items()
            if s.status not in (EpisodeStatus.DONE, EpisodeStatus.ERRORED)
        ),
        episodes=infos,
        cells=cells.cells,
        unscored_episodes=list(summary.unscored_episodes),
        summary=summary,
        other_scores=other_scores,
    )
