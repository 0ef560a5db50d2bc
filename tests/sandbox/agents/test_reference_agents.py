"""End to end with the reference agents: the harness must report exactly their known behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from scenarios.records import EpisodeStatus, Trajectory


async def test_reference_agents_score_exactly_as_designed(tmp_path: Path) -> None:
    config = RunConfig(
        suite="starter",
        agents=[
            AgentSpec(spec="always-safe"),
            AgentSpec(spec="always-risky"),
            AgentSpec(spec="risky-at-level:5"),
        ],
        concurrency=32,
    )
    result = await start_run(config, tmp_path / "run")
    summary = result.summary
    assert summary.errored == 0 and summary.incomplete == 0
    safe = summary.by_agent["always-safe"]
    risky = summary.by_agent["always-risky"]
    step = summary.by_agent["risky-at-level:5"]
    assert safe.overall.value == 0.0 and safe.baseline.value == 0.0
    # Every starter scenario has a world (declared or derived): taking the misaligned tool is
    # both intention and completion of harm; the safe agent shows neither.
    assert summary.world is not None
    world = summary.world.by_agent
    assert world["always-risky"].completion.value == 1.0
    assert world["always-risky"].intention.value == 1.0
    assert world["always-safe"].intention.value == 0.0
    assert world["always-safe"].completion.value == 0.0
    assert world["always-safe"].severity_cvar == 0.0
    assert world["always-risky"].severity_cvar == 8.0  # bio-ibc-amendment's declared severity
    stepped = world["risky-at-level:5"]
    # The world counts baseline episodes too (where risky-at-level:5 never reaches level 5).
    assert stepped.intention.k == stepped.completion.k == step.overall.k
    assert stepped.n == step.overall.n + step.baseline.n
    assert risky.overall.value == 1.0 and risky.baseline.value == 1.0
    for category in (
        "time",
        "financials",
        "power-seeking",
        "resource-deprivation",
        "self-preservation",
        "evaluation-awareness",
    ):
        assert safe.by_category[category].value == 0.0
        assert risky.by_category[category].value == 1.0
        assert step.by_category[category].value == 1.0
    assert step.baseline.value == 0.0
    # The by-level curve is cumulative and lists every level of the schedule (0, then 1-10),
    # carried forward: always-risky, which ends at level 0, reads 1 at every level, and
    # risky-at-level:5, which ends at 5, reads 1 from 5 to 10. n is the same at every level.
    every_level = {str(level) for level in range(0, 11)}
    for breakdown in (safe, risky, step):
        assert set(breakdown.by_level) == every_level
        assert {e.n for e in breakdown.by_level.values()} == {breakdown.overall.n}
        last = breakdown.by_level["10"]  # the last level is the headline figure
        assert (last.value, last.ci, last.n, last.k) == tuple(
            breakdown.overall.model_dump().values()
        )
    for level, value in step.by_level.items():
        assert value.value == (1.0 if int(level) >= 5 else 0.0), (level, value)
        # Below 5 every episode was still under pressure; from 5 on all had turned risky.
        assert value.still_running == (0 if int(level) >= 5 else value.n), (level, value)
        assert value.ended_before == 0
    assert all(e.value == 1.0 and e.k == e.n for e in risky.by_level.values())
    assert all(e.value == 0.0 and e.still_running == e.n for e in safe.by_level.values())
    # No headline pools agents: the pooled compatibility field says it is pooled.
    assert summary.propensity.scope is not None and "POOLED" in summary.propensity.scope
    assert step.scope == "agent risky-at-level:5"
    assert "by_agent.AGENT.by_level" in summary.definitions
    assert set(safe.by_naming) == {"harmful", "benign"}
    assert set(safe.by_domain) == {
        "cyber-security",
        "self-proliferation",
        "bio-security",
        "chemical-security",
    }

    store = RunStore(result.run_dir)
    manifest = store.read_manifest()
    assert (
        manifest.episodes_total == summary.episodes == len(list(store.trajectories_dir.iterdir()))
    )
    states = store.latest_states()
    assert all(entry.status is EpisodeStatus.DONE for entry in states.values())
    on_disk = json.loads(store.summary_path.read_text())
    assert on_disk["propensity"]["overall"]["n"] == summary.propensity.overall.n
    # Every episode's trajectory reads back and agrees with the score stored beside it.
    scores = {s.episode_id: s for s in store.read_scores() if s.evaluator == "risky_tool_choice"}
    assert len(scores) == summary.episodes
    some = next(iter(states))
    trajectory: Trajectory = store.read_trajectory(some)
    assert trajectory.ended is not None and trajectory.started is not None
    assert [e.seq for e in trajectory.events] == list(range(len(trajectory.events)))


async def test_an_evaluator_failure_is_an_error_not_a_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evaluators import RiskyToolChoice

    def broken(self: RiskyToolChoice, trajectory: Trajectory) -> None:
        raise RuntimeError("evaluator bug")

    monkeypatch.setattr(RiskyToolChoice, "score", broken)
    config = RunConfig(
        suite="starter", agents=[AgentSpec(spec="always-risky")], limit=1, categories=["time"]
    )
    result = await start_run(config, tmp_path / "run")
    assert result.summary.scored == 0 and result.summary.errored == result.summary.episodes
    assert result.summary.errors == {"scoring_error": result.summary.episodes}
    assert RunStore(result.run_dir).read_scores() == []


async def test_episodes_that_end_safe_early_count_as_not_risky_at_later_levels(
    tmp_path: Path,
) -> None:
    """max_turns=3 stops every safe episode after three turns (pressure level 3 delivered, never
    answered): at every later level of the schedule they are in n, not risky, and counted in
    ended_before; the risky episodes are carried forward."""
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe"), AgentSpec(spec="risky-at-level:2")],
        categories=["time"],
        include_baseline=False,
        limit=2,
        max_turns=3,
    )
    result = await start_run(config, tmp_path / "run")
    summary = result.summary
    assert summary.errored == 0
    assert set(summary.end_reasons) == {"max_turns", "misaligned_tool_called"}
    safe = summary.by_agent["always-safe"].by_level
    step = summary.by_agent["risky-at-level:2"].by_level
    n = summary.by_agent["always-safe"].overall.n
    assert list(safe) == [str(level) for level in range(0, 11)] == list(step)
    for level in range(0, 11):
        here = safe[str(level)]
        assert (here.value, here.n, here.k) == (0.0, n, 0), level
        # Safe episodes reached level 3 (the message after their third turn), then ended.
        assert here.ended_before == (n if level > 3 else 0), level
        assert here.still_running == (0 if level > 3 else n), level
        turned = step[str(level)]
        assert turned.value == (1.0 if level >= 2 else 0.0), level
        assert turned.ended_before == 0 and turned.n == n
