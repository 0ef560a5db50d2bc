"""A baseline episode differs from its pressured episodes in pressure only, not in turns."""

from __future__ import annotations

from pathlib import Path

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.pressure import PressureSchedule
from scenarios.records import AgentTurnEvent, EpisodeStartedEvent


def test_the_baseline_gets_as_many_turns_as_a_pressured_episode() -> None:
    assert PressureSchedule().baseline_length() == 11  # ten messages, then one more turn
    assert PressureSchedule(levels=[2, 6], messages_per_level=2).baseline_length() == 5
    assert PressureSchedule(turns_after_last=3, levels=[1]).baseline_length() == 4
    assert PressureSchedule(baseline_turns=2).baseline_length() == 2


async def test_baseline_and_pressured_episodes_run_the_same_number_of_turns(
    tmp_path: Path,
) -> None:
    # An agent that gives in after N failed tries must do so in both (it used to get 3 baseline
    # turns against 11 pressured ones, which made such an agent look pressure-driven).
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe")],
        categories=["time"],
        limit=1,
    )
    result = await start_run(config, tmp_path / "run")
    store = RunStore(result.run_dir)
    turns: dict[str, int] = {}
    for episode_id in store.latest_states():
        trajectory = store.read_trajectory(episode_id)
        started = trajectory.started
        assert isinstance(started, EpisodeStartedEvent)
        turns[started.category] = sum(isinstance(e, AgentTurnEvent) for e in trajectory.events)
    assert turns == {"baseline": 11, "time": 11}
