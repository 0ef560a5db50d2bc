"""Branched replay: keep the steps before K of a recorded episode, continue live."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.orchestrator import resume_run
from sandbox.replay.branch import BranchError, branch_run
from scenarios.records import (
    AgentTurnEvent,
    EpisodeStartedEvent,
    PressureEvent,
    ToolCallEvent,
    WorldEvent,
)

SCENARIO = "bio-ibc-amendment"


async def _record_safe_episode(tmp_path: Path) -> tuple[Path, str]:
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe")],
        scenario_ids=[SCENARIO],
        categories=["time"],
        include_baseline=False,
        namings=["harmful"],  # type: ignore[list-item]
        max_turns=6,
    )
    result = await start_run(config, tmp_path / "recorded")
    (episode_id,) = RunStore(result.run_dir).latest_states()
    return result.run_dir, episode_id


async def test_branch_at_step_2_risky_reaches_harm_and_safe_does_not(tmp_path: Path) -> None:
    source, episode_id = await _record_safe_episode(tmp_path)
    recorded = RunStore(source).read_trajectory(episode_id)
    outcomes = {}
    for agent in ("always-risky", "always-safe"):
        result = await branch_run(
            source, episode_id, 2, AgentSpec(spec=agent), tmp_path / f"branch-{agent}"
        )
        store = RunStore(result.run_dir)
        assert result.summary.errored == 0 and result.summary.scored == 1
        (branched_id,) = store.latest_states()
        trajectory = store.read_trajectory(branched_id)
        started = trajectory.started
        assert isinstance(started, EpisodeStartedEvent) and started.agent == agent
        assert started.branched_from is not None
        assert started.branched_from["at"] == 2 and started.branched_from["divergences"] == []
        # Step 1 is the recording's, verbatim: same call, same pressure message after it.
        kept = [e for e in trajectory.events if e.turn < 2]
        recorded_kept = [e for e in recorded.events if e.turn < 2]
        assert [c.call for c in kept if isinstance(c, ToolCallEvent)] == [
            c.call for c in recorded_kept if isinstance(c, ToolCallEvent)
        ]
        assert [p.text for p in kept if isinstance(p, PressureEvent)] == [
            p.text for p in recorded_kept if isinstance(p, PressureEvent)
        ]
        live = [e for e in trajectory.events if isinstance(e, AgentTurnEvent) and e.turn >= 2]
        assert live, "the branch must continue live from step 2"
        world = next(s for s in store.read_scores() if s.evaluator == "world_state")
        outcomes[agent] = world
        assert store.read_manifest().branch is not None
        first_world = next(w for w in trajectory.events if isinstance(w, WorldEvent))
        assert first_world.state_before == "awaiting-approval"
    risky, safe = outcomes["always-risky"], outcomes["always-safe"]
    assert risky.details["completion"] and risky.label == "completed-harm"
    assert risky.details["harmful_states_reached"] == ["unapproved-run"]
    assert not safe.details["completion"] and not safe.details["intention"]
    assert safe.details["task_completion"]  # the review request is the goal state


async def test_branch_points_are_checked(tmp_path: Path) -> None:
    source, episode_id = await _record_safe_episode(tmp_path)
    with pytest.raises(BranchError, match="at most"):
        await branch_run(source, episode_id, 50, AgentSpec(spec="always-risky"), tmp_path / "x")
    with pytest.raises(BranchError, match="no episode"):
        await branch_run(source, "nope", 2, AgentSpec(spec="always-risky"), tmp_path / "y")
    # A branch run resumes like any run (the branch point travels in its manifest).
    result = await branch_run(
        source, episode_id, 3, AgentSpec(spec="always-risky"), tmp_path / "z", category="financials"
    )
    again = await resume_run(result.run_dir)
    assert again.ran == 0 and again.summary.scored == 1
