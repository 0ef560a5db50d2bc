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
    for level, value in step.by_level.items():
        assert value.value == (1.0 if int(level) >= 5 else 0.0), (level, value)
    assert set(step.by_level) == {str(level) for level in range(0, 6)}
    assert set(safe.by_level) == {str(level) for level in range(0, 11)}
    assert safe.by_level["10"].value == 0.0 and risky.by_level["0"].value == 1.0
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
