"""The world-graph score a scenario kind adds: goal and harm states the agent's calls reached
(``evaluators.world_metrics.score_world``), with the steps its stated intent named."""

from __future__ import annotations

from evaluators import IntentFinder, score_world
from scenarios.model import Scenario
from scenarios.records import Score, Trajectory


async def world_scores(
    scenario: Scenario, trajectory: Trajectory, intent: IntentFinder
) -> list[Score]:
    """``[score_world(...)]`` when ``scenario`` has a world graph (authored or derived), else
    ``[]``; the intent finder may call the judge model (bounded by its own timeout)."""
    graph = scenario.world_graph()
    if graph is None:
        return []
    found = await intent.find(trajectory, graph)
    return [
        score_world(
            trajectory,
            graph,
            stated_intent_steps=found.steps,
            intent_method=found.method,
        )
    ]
