"""Paired comparison of two agents, or of one agent before and after a change.

Two propensities measured on the same scenarios are not independent samples: the same scenario,
pressure category, naming and repeat is hard or easy for both agents alike. Comparing their two
Wilson intervals would throw that pairing away and call real differences noise, so episodes are
paired on what defines them, and the difference is estimated on the pairs:

* the difference (B − A) is the share of pairs where only B called the misaligned tool minus the
  share where only A did;
* its 95% interval is Newcombe's hybrid score interval for paired proportions (Newcombe 1998,
  Statistics in Medicine 17:2635, method 10): the two Wilson intervals combined by "square and
  add", corrected for the correlation between the paired outcomes (with the continuity-corrected
  phi of the paper). It stays inside [-1, 1] and behaves at 0 and 1, where a Wald interval
  collapses, just as the Wilson intervals of the rest of the harness do;
* the p-value is McNemar's exact test: a two-sided binomial test of the discordant pairs against
  an even split; with no discordant pair it is 1.

Like the run summary, `overall` covers pressured episodes only; the zero-pressure baseline is
compared apart (and appears among the categories).

Without named agents, two runs are compared on the agents they share, agent by agent: each
agent's episodes pair only with the same agent's in the other run (`by_agent` has each one's
comparison, `overall` pools the pairs), and the agents of only one run are listed as left out.
Two runs of one agent each are compared with each other whatever the agents are called.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel, Field, computed_field

from evaluators.injection_metrics import EVALUATOR as INJECTION
from evaluators.risky_choice import BASELINE
from evaluators.risky_choice import EVALUATOR as RISKY_TOOL_CHOICE
from evaluators.stats import Z_95, Estimate, estimate, wilson_interval
from evaluators.world_metrics import EVALUATOR as WORLD_STATE
from sandbox.results.store import CorruptRecordError, RunStore
from sandbox.results.summary import of_builtin_kind
from scenarios.records import EpisodeStatus, Score

METHOD = (
    "difference = B − A on paired episodes; 95% interval: Newcombe (1998) hybrid score interval "
    "for paired proportions (method 10, continuity-corrected phi); p-value: McNemar exact "
    "(two-sided binomial test on the discordant pairs)"
)
PAIR_KEY = ("scenario_id", "category", "naming", "repeat")
# Attacked episodes also pair on their injection (the attack score's ``details["injection"]``).
ATTACK_KEY = (*PAIR_KEY, "injection")
# How many unpaired episode ids a result lists (all are counted).
UNPAIRED_EXAMPLES = 10

Key = tuple[str, ...]


class CompareError(ValueError):
    """The two runs cannot be compared as asked (no such agent, an ambiguous agent, ...)."""


class PairedComparison(BaseModel):
    """One paired 2×2 table: A's and B's rates on the same pairs, and their difference."""

    pairs: int
    a: Estimate
    b: Estimate
    # B − A; None with no pairs.
    difference: float | None
    ci: tuple[float, float] | None
    both: int = Field(description="pairs where A and B both called the misaligned tool")
    a_only: int = Field(description="discordant: only A called it")
    b_only: int = Field(description="discordant: only B called it")
    neither: int
    p_value: float | None = Field(description="McNemar exact, two-sided; None with no pairs")

    @property
    def discordant(self) -> int:
        return self.a_only + self.b_only

    def render_difference(self) -> str:
        if self.difference is None or self.ci is None:
            return "–"
        return f"{self.difference:+.2f} [{self.ci[0]:+.2f}, {self.ci[1]:+.2f}]"


class Unpaired(BaseModel):
    """Scored episodes that found no partner in the other run (they enter no paired figure)."""

    a: int = 0
    b: int = 0
    a_examples: list[str] = Field(default_factory=list)
    b_examples: list[str] = Field(default_factory=list)


class Comparison(BaseModel):
    """`propensity compare RUN_A RUN_B`: B against A, overall, by category and by scenario."""

    run_a: str
    run_b: str
    run_id_a: str
    run_id_b: str
    # None: the agents both runs hold (`agents`), each paired with itself in the other run.
    agent_a: str | None
    agent_b: str | None
    paired_by: list[str]
    method: str = METHOD
    # Each side's propensity on all its selected pressured episodes, paired or not (the
    # figure its own report shows).
    propensity_a: Estimate
    propensity_b: Estimate
    overall: PairedComparison
    baseline: PairedComparison
    by_category: dict[str, PairedComparison] = Field(default_factory=dict)
    by_scenario: dict[str, PairedComparison] = Field(default_factory=dict)
    unpaired: Unpaired = Field(default_factory=Unpaired)
    # Compared agent by agent (no agent named): the agents both runs hold, each one's pressured
    # comparison, and the agents of only one run, whose episodes enter no figure.
    agents: list[str] = Field(default_factory=list)
    by_agent: dict[str, PairedComparison] = Field(default_factory=dict)
    left_out_a: list[str] = Field(default_factory=list)
    left_out_b: list[str] = Field(default_factory=list)
    # On the world-state graph, over every pair both of whose episodes have a world (baseline
    # included, as in the run summary); None when neither run has world scores.
    world_completion: PairedComparison | None = None
    world_intention: PairedComparison | None = None
    # Attacks planted in tool outputs: targeted attack success on attacked episodes paired on
    # scenario, category, naming, repeat and injection (and agent), over attacks that reached
    # the agent in both runs; None when neither run has attacked episodes. The defence each
    # run used (``propensity run --defence``) says what a difference may come from.
    attack_success: PairedComparison | None = None
    defence_a: str = "none"
    defence_b: str = "none"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pooled(self) -> str | None:
        """How the overall, category and scenario rows pool agents, or None when they hold one
        agent (a pair is always one agent's episode in both runs; several agents' pairs are
        pooled there, and ``by_agent`` holds each agent's own comparison)."""
        if self.agent_a is not None or len(self.agents) < 2:
            return None
        return (
            f"pooled over the pairs of {len(self.agents)} agents (each agent compared with "
            "itself); each agent's own comparison is in 'By agent'"
        )


# -- statistics ------------------------------------------------------------------------------


def mcnemar_exact_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: P(a split at least this uneven | no difference)."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(a_only, b_only) + 1))
    return min(1.0, float(Fraction(2 * tail, 2**n)))


def newcombe_paired_interval(
    both: int, first_only: int, second_only: int, neither: int, z: float = Z_95
) -> tuple[float, float]:
    """Interval for p_first − p_second on paired binary data (Newcombe 1998, method 10).

    ``first_only`` counts pairs where only the first member was positive. Raises on no pairs.
    """
    n = both + first_only + second_only + neither
    if n <= 0:
        raise ValueError("a paired interval needs at least one pair")
    first, second = both + first_only, both + second_only
    p1, p2 = first / n, second / n
    l1, u1 = wilson_interval(first, n, z)
    l2, u2 = wilson_interval(second, n, z)
    margins = first * (n - first) * second * (n - second)
    phi = 0.0
    if margins:
        cross = both * neither - first_only * second_only
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(
        max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    )
    return max(-1.0, low), min(1.0, high)


def paired_comparison(pairs: Iterable[tuple[bool, bool]]) -> PairedComparison:
    """Tabulate (A positive, B positive) pairs into a :class:`PairedComparison`."""
    both = a_only = b_only = neither = 0
    for in_a, in_b in pairs:
        if in_a and in_b:
            both += 1
        elif in_a:
            a_only += 1
        elif in_b:
            b_only += 1
        else:
            neither += 1
    n = both + a_only + b_only + neither
    difference: float | None = None
    ci: tuple[float, float] | None = None
    if n:
        difference = (b_only - a_only) / n
        low, high = newcombe_paired_interval(both, b_only, a_only, neither)
        ci = (round(low, 6), round(high, 6))
    return PairedComparison(
        pairs=n,
        a=estimate(both + a_only, n),
        b=estimate(both + b_only, n),
        difference=difference,
        ci=ci,
        both=both,
        a_only=a_only,
        b_only=b_only,
        neither=neither,
        p_value=mcnemar_exact_p(a_only, b_only) if n else None,
    )


# -- reading the runs ------------------------------------------------------------------------


class _Side:
    """One run's scored (done) episodes: propensity scores by episode, world scores by episode."""

    def __init__(self, path: Path) -> None:
        store = RunStore(path)
        try:
            manifest = store.read_manifest()
            states = store.latest_states()
            scores = store.read_scores()
        except (FileNotFoundError, CorruptRecordError) as exc:
            raise CompareError(str(exc)) from exc
        done = {eid for eid, entry in states.items() if entry.status is EpisodeStatus.DONE}
        self.path = path
        self.run_id = manifest.run_id
        self.risky: dict[str, Score] = {}
        self.world: dict[str, Score] = {}
        self.defence = manifest.config.defence
        # Attacked episodes are compared on their attacks only (as the summary keeps them out
        # of every other figure), never paired with an un-attacked episode.
        attacked = {
            s.episode_id for s in scores if s.evaluator == INJECTION and s.details.get("attacked")
        }
        self.attacks: dict[str, Score] = {}
        for score in scores:
            if score.episode_id in attacked:
                if score.evaluator == INJECTION and score.episode_id in done:
                    self.attacks[score.episode_id] = score
                continue
            # Unobserved choices (unreadable call text) pair with nothing: they are unpaired.
            if score.episode_id not in done or score.label == "unobserved":
                continue
            if not of_builtin_kind(score):  # a plugin kind's: in no built-in comparison
                continue
            if score.evaluator == RISKY_TOOL_CHOICE:
                self.risky[score.episode_id] = score
            elif score.evaluator == WORLD_STATE:
                self.world[score.episode_id] = score

    @property
    def agents(self) -> list[str]:
        scored = [*self.risky.values(), *self.attacks.values()]
        return sorted({str(s.details.get("agent")) for s in scored})

    def select_attacks(self, agents: Collection[str], with_agent: bool) -> dict[Key, Score]:
        """Delivered attacks of ``agents`` keyed by ``ATTACK_KEY`` (and agent)."""
        keyed: dict[Key, Score] = {}
        for score in self.attacks.values():
            if score.details.get("agent") not in agents or score.value is None:
                continue
            key = tuple(str(score.details.get(field)) for field in ATTACK_KEY)
            keyed[key + ((str(score.details.get("agent")),) if with_agent else ())] = score
        return keyed

    def select(self, agents: Collection[str], with_agent: bool) -> dict[Key, Score]:
        """This side's episodes of ``agents`` keyed for pairing; later records win."""
        keyed: dict[Key, Score] = {}
        for score in self.risky.values():
            if score.details.get("agent") not in agents:
                continue
            key = tuple(str(score.details.get(field)) for field in PAIR_KEY)
            if with_agent:
                key += (str(score.details.get("agent")),)
            keyed[key] = score
        return keyed


def _resolve_agents(
    a: _Side, b: _Side, agent_a: str | None, agent_b: str | None, flags: tuple[str, str]
) -> tuple[str | None, str | None]:
    """Which agent of each run to compare; (None, None) pairs each shared agent with itself."""
    for side, agent, flag in ((a, agent_a, flags[0]), (b, agent_b, flags[1])):
        if not side.agents:
            raise CompareError(
                f"{side.path} has no scored propensity or attacked episodes to compare"
            )
        if agent is not None and agent not in side.agents:
            raise CompareError(
                f"{flag} {agent!r} is not an agent of {side.path} "
                f"(its agents: {', '.join(side.agents)})"
            )
    same_run = a.path.resolve() == b.path.resolve()
    if agent_a is None and agent_b is None:
        if len(a.agents) == 1 and len(b.agents) == 1:
            agent_a, agent_b = a.agents[0], b.agents[0]
        elif set(a.agents) & set(b.agents) and not same_run:
            return None, None
    elif agent_a is not None and agent_b is None:
        agent_b = _default_other(b, agent_a, same_run, "--agent-b")
    elif agent_b is not None and agent_a is None:
        agent_a = _default_other(a, agent_b, same_run, "--agent-a")
    if agent_a is None or agent_b is None:
        shared = "" if same_run else ", and they share none"
        raise CompareError(
            f"cannot tell which agents to compare: {a.path} has {', '.join(a.agents)} and "
            f"{b.path} has {', '.join(b.agents)}{shared}; choose with --agent-a and --agent-b"
        )
    if same_run and agent_a == agent_b:
        raise CompareError(f"comparing {agent_a!r} in {a.path} with itself: choose another agent")
    return agent_a, agent_b


def _default_other(side: _Side, chosen: str, same_run: bool, flag: str) -> str:
    if len(side.agents) == 1:
        return side.agents[0]
    if chosen in side.agents and not same_run:
        return chosen
    raise CompareError(
        f"{side.path} has several agents ({', '.join(side.agents)}): choose one with {flag}"
    )


def _split(
    pairs: list[tuple[Score, Score]], key: Callable[[Score], str]
) -> dict[str, PairedComparison]:
    groups: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for score_a, score_b in pairs:
        groups[key(score_a)].append((bool(score_a.value), bool(score_b.value)))
    return {name: paired_comparison(groups[name]) for name in sorted(groups)}


def _by_agent(pairs: list[tuple[Score, Score]], agents: list[str]) -> dict[str, PairedComparison]:
    """Each agent's own comparison, in the order given (an agent with no pair has 0 pairs)."""
    split = _split(pairs, lambda s: str(s.details.get("agent")))
    return {agent: split.get(agent) or paired_comparison([]) for agent in agents}


def _world(
    a: _Side, b: _Side, pairs: list[tuple[Score, Score]], detail: str
) -> PairedComparison | None:
    if not a.world and not b.world:
        return None
    outcomes = [
        (
            bool(a.world[sa.episode_id].details.get(detail)),
            bool(b.world[sb.episode_id].details.get(detail)),
        )
        for sa, sb in pairs
        if sa.episode_id in a.world and sb.episode_id in b.world
    ]
    return paired_comparison(outcomes)


def _is_baseline(score: Score) -> bool:
    return score.details.get("category") == BASELINE


def compare_runs(
    run_a: Path | str,
    run_b: Path | str,
    *,
    agent_a: str | None = None,
    agent_b: str | None = None,
    agent: str | None = None,
) -> Comparison:
    """Compare B with A on paired episodes (see the module docstring for the statistics).

    Pass the same run directory twice with two agents to compare agents of one run; ``agent``
    names one agent of both runs. Without agents, each run's single agent is used; runs with
    several agents are compared on the agents they share, agent by agent (pairs also match on
    the agent), and the others are listed as left out. Raises :class:`CompareError`.
    """
    a, b = _Side(Path(run_a)), _Side(Path(run_b))
    flags = ("--agent-a", "--agent-b")
    if agent is not None:
        if agent_a is not None or agent_b is not None:
            raise CompareError("--agent names the agent of both runs: leave out --agent-a/-b")
        agent_a = agent_b = agent
        flags = ("--agent", "--agent")
    chosen_a, chosen_b = _resolve_agents(a, b, agent_a, agent_b, flags)
    with_agent = chosen_a is None
    shared = sorted(set(a.agents) & set(b.agents)) if with_agent else []
    selected_a = a.select(shared if with_agent else [str(chosen_a)], with_agent)
    selected_b = b.select(shared if with_agent else [str(chosen_b)], with_agent)
    keys = sorted(selected_a.keys() & selected_b.keys())
    pairs = [(selected_a[k], selected_b[k]) for k in keys]
    pressured = [(sa, sb) for sa, sb in pairs if not _is_baseline(sa)]
    baseline = [(sa, sb) for sa, sb in pairs if _is_baseline(sa)]
    only_a = sorted(selected_a[k].episode_id for k in selected_a.keys() - selected_b.keys())
    only_b = sorted(selected_b[k].episode_id for k in selected_b.keys() - selected_a.keys())

    def rate(selected: dict[Key, Score]) -> Estimate:
        mine = [s for s in selected.values() if not _is_baseline(s)]
        return estimate(sum(1 for s in mine if s.value), len(mine))

    def outcomes(chosen: list[tuple[Score, Score]]) -> list[tuple[bool, bool]]:
        return [(bool(sa.value), bool(sb.value)) for sa, sb in chosen]

    by_category = _split(pairs, lambda s: str(s.details.get("category")))
    if BASELINE in by_category:  # first, as in the run report
        by_category = {BASELINE: by_category.pop(BASELINE), **by_category}
    return Comparison(
        run_a=str(a.path),
        run_b=str(b.path),
        run_id_a=a.run_id,
        run_id_b=b.run_id,
        agent_a=chosen_a,
        agent_b=chosen_b,
        paired_by=[*PAIR_KEY, *(["agent"] if with_agent else [])],
        propensity_a=rate(selected_a),
        propensity_b=rate(selected_b),
        overall=paired_comparison(outcomes(pressured)),
        baseline=paired_comparison(outcomes(baseline)),
        by_category=by_category,
        by_scenario=_split(pressured, lambda s: str(s.details.get("scenario_id"))),
        agents=shared,
        by_agent=_by_agent(pressured, shared),
        left_out_a=[x for x in a.agents if x not in shared] if with_agent else [],
        left_out_b=[x for x in b.agents if x not in shared] if with_agent else [],
        unpaired=Unpaired(
            a=len(only_a),
            b=len(only_b),
            a_examples=only_a[:UNPAIRED_EXAMPLES],
            b_examples=only_b[:UNPAIRED_EXAMPLES],
        ),
        world_completion=_world(a, b, pairs, "completion"),
        world_intention=_world(a, b, pairs, "intention"),
        attack_success=_attacks(a, b, shared if with_agent else None, chosen_a, chosen_b),
        defence_a=a.defence,
        defence_b=b.defence,
    )


def _attacks(
    a: _Side, b: _Side, shared: list[str] | None, agent_a: str | None, agent_b: str | None
) -> PairedComparison | None:
    if not a.attacks and not b.attacks:
        return None
    with_agent = shared is not None
    attacks_a = a.select_attacks(shared if shared is not None else [str(agent_a)], with_agent)
    attacks_b = b.select_attacks(shared if shared is not None else [str(agent_b)], with_agent)
    keys = sorted(attacks_a.keys() & attacks_b.keys())
    return paired_comparison([(bool(attacks_a[k].value), bool(attacks_b[k].value)) for k in keys])
