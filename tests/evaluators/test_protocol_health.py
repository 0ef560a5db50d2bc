"""Protocol health counts an episode with no tool call as a protocol problem only where tools
were offered: a kind that asks in words alone is not an agent failing to call tools."""

from __future__ import annotations

from typing import Any

from evaluators.protocol_health import (
    NO_TOOL_CALL,
    NO_TOOLS_OFFERED,
    score_protocol,
    summarize_protocol,
)
from scenarios.records import AgentTurnEvent, EpisodeStartedEvent, Naming, Trajectory

TOOL = {"type": "function", "function": {"name": "Lookup", "parameters": {"type": "object"}}}


def _trajectory(episode_id: str, tools: list[dict[str, Any]], native_calls: int) -> Trajectory:
    started = EpisodeStartedEvent(
        episode_id=episode_id,
        scenario_id="s",
        domain="d",
        agent="a",
        category="baseline",
        naming=Naming.HARMFUL,
        tools=tools,
    )
    turn = AgentTurnEvent(native_calls=native_calls)
    return Trajectory(episode_id=episode_id, events=[started, turn])


def test_no_call_where_none_was_offered_is_no_protocol_problem() -> None:
    asked = [score_protocol(_trajectory(f"e{k}", [], 0)) for k in range(3)]
    assert {s.label for s in asked} == {NO_TOOLS_OFFERED}
    assert {s.value for s in asked} == {None}
    health = summarize_protocol(asked)["a"]
    assert health.no_tool_call_episodes.n == 0 and health.warning is None
    assert health.turns == 0 and health.native_turns.n == 0  # no share over tool-less turns


def test_no_call_where_tools_were_offered_still_warns() -> None:
    silent = [score_protocol(_trajectory(f"e{k}", [TOOL], 0)) for k in range(3)]
    assert {s.label for s in silent} == {NO_TOOL_CALL}
    words = [score_protocol(_trajectory(f"w{k}", [], 0)) for k in range(5)]
    health = summarize_protocol(silent + words)["a"]
    assert (health.no_tool_call_episodes.k, health.no_tool_call_episodes.n) == (3, 3)
    assert health.warning is not None and "3 of 3 episodes" in health.warning


def test_scores_written_before_tools_offered_was_recorded_count_as_offered() -> None:
    old = score_protocol(_trajectory("e", [TOOL], 0))
    del old.details["tools_offered"]
    assert summarize_protocol([old])["a"].no_tool_call_episodes.k == 1
