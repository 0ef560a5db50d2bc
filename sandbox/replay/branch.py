"""Branched replay: keep a recorded episode's first K-1 steps, then continue live.

A *step* is an agent turn (``Trajectory.steps()``: step K is turn K, 1-based). Branching at K
keeps everything the agent saw and did before turn K — including the pressure message or nudge
that followed turn K-1 — and lets a chosen agent (and, optionally, another pressure category)
take turn K onwards in a fresh episode of its own run directory.

The recorded tool calls of the prefix are re-executed, in order, against fresh tool backends
so stateful tools (the Python emulators, call limits) stand where they stood; the recorded
results stay in the trajectory because they are what the agent saw, and any difference between
the two is reported in the started event's ``branched_from.divergences``. Only propensity
scenarios, whose tools are proxy or Python emulators, can be branched: nothing in a prefix is
ever sent to a real system or to a model.

Only the live turns are the new agent's. The prefix's agent-turn records (the recorded agent's
model, latency, tokens, call accounting) are not copied into the new trajectory, so agent-call
counts, token usage and protocol health count live calls only; ``branched_from`` says how many
turns were replayed, by which agent, under which category. Scorers read only the live turns
(``evaluators.risky_choice.first_live_turn``), and the episode is counted under the pressure it
was actually shown (the prefix's, then the live part's), with the requested category noted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sandbox.agents import AgentSpec
from sandbox.agents.protocol import Agent
from sandbox.config import EpisodeSpec, RunConfig
from sandbox.episode import EpisodeOutcome, EpisodeRunner
from sandbox.orchestrator import (
    Branch,
    BranchPoint,
    ProgressSink,
    RunResult,
    pack_source,
    start_run,
)
from sandbox.pressure import PressureSchedule
from sandbox.store import RunStore, TrajectoryWriter
from scenarios.model import Scenario
from scenarios.records import (
    AgentTurnEvent,
    MessageEvent,
    PressureEvent,
    ToolCallEvent,
    ToolResultEvent,
    Trajectory,
    pair_calls,
)
from tools import ToolRegistry, default_registry

# EPISODE_ID_PATTERN's bound on an episode id (scenarios.records).


class BranchError(ValueError):
    """The recorded episode cannot be branched as asked (the message says why)."""


class Divergence(BaseModel):
    step: int
    tool: str
    recorded: str
    now: str


def recorded_turns(trajectory: Trajectory) -> int:
    return max((e.turn for e in trajectory.events if isinstance(e, AgentTurnEvent)), default=0)


def check_branchable(trajectory: Trajectory, at: int) -> None:
    """Refuse a branch point the recording cannot support, before anything runs."""
    started = trajectory.started
    if started is None:
        raise BranchError(f"episode {trajectory.episode_id} has no start event")
    turns = recorded_turns(trajectory)
    if at - 1 > turns:
        raise BranchError(
            f"episode {trajectory.episode_id} has {turns} step(s); --at must be at most {turns + 1}"
        )
    if at > 1:
        after_last = [
            e
            for e in trajectory.events
            if e.turn == at - 1 and isinstance(e, MessageEvent) and e.message.role == "user"
        ]
        ended = trajectory.ended
        if not after_last and ended is not None and ended.turns == at - 1:
            raise BranchError(
                f"episode {trajectory.episode_id} ended after step {at - 1} "
                f"({ended.reason}); nothing was said to the agent that a new step could answer"
            )


class BranchRunner(EpisodeRunner):
    """An :class:`EpisodeRunner` whose first K-1 turns come from a recording."""

    def __init__(
        self,
        spec: EpisodeSpec,
        scenario: Scenario,
        agent: Agent,
        config: RunConfig,
        writer: TrajectoryWriter,
        recorded: Trajectory,
        point: BranchPoint,
        registry: ToolRegistry = default_registry,
        schedule: PressureSchedule | None = None,
    ) -> None:
        super().__init__(spec, scenario, agent, config, writer, registry, schedule)
        check_branchable(recorded, point.at)
        self.recorded = recorded
        self.point = point

    def _prefix(self) -> list[Any]:
        return [e for e in self.recorded.events if e.turn < self.point.at]

    async def _rebuild_tool_state(self, prefix: list[Any]) -> list[Divergence]:
        divergences = []
        # Each call with its own result, by event order where recorded ids repeat; calls are
        # re-executed in the order their results were recorded (the order state changed).
        answered = [(c, r) for c, r in pair_calls(prefix) if r is not None]
        order = {id(r): k for k, (_, r) in enumerate(answered)}
        answered.sort(key=lambda pair: order[id(pair[1])])
        for call_event, event in answered:
            assert event is not None
            now = await self.toolset.execute(call_event.call, self.ctx)
            recorded = event.result
            if (now.ok, now.output) != (recorded.ok, recorded.output):
                divergences.append(
                    Divergence(
                        step=call_event.turn,
                        tool=call_event.call.name,
                        recorded=recorded.output[:500],
                        now=now.output[:500],
                    )
                )
        return divergences

    async def run(self) -> EpisodeOutcome:
        prefix = self._prefix()
        divergences = await self._rebuild_tool_state(prefix)
        self._write_started(
            branched_from={
                **self.point.model_dump(),
                "kept_events": len(prefix),
                "divergences": [d.model_dump() for d in divergences],
                **replay_facts(self.recorded, self.point.at, self.spec.category),
            }
        )
        results = {id(r): c for c, r in pair_calls(prefix) if r is not None}
        for event in prefix:
            self.turn = event.turn
            if isinstance(event, MessageEvent):
                self._say(event.message)
            elif isinstance(event, AgentTurnEvent):
                # The recorded agent's call, not one of this agent's: left out of the new
                # trajectory (and so of its call counts, usage and protocol health).
                continue
            elif isinstance(event, PressureEvent | ToolCallEvent):
                self.writer.write(event.model_copy())
                if isinstance(event, PressureEvent):
                    # The live pressure continues where the recording stood.
                    self.pressure.after_turn(failed_aligned_call=True)
                    self.level = event.level
            elif isinstance(event, ToolResultEvent):
                self.writer.write(event.model_copy())
                if id(event) in results:
                    call_event = results[id(event)]
                    self._observe_world(call_event.call, event.result, call_event.seq)
        self.turn = self.point.at - 1
        return await self._loop()


def branch_episode_id(episode_id: str, point: BranchPoint) -> str:
    """The marked id of an episode branched at ``point`` (see ``BranchPoint.mark``)."""
    return point.mark(episode_id)


def replay_facts(recorded: Trajectory, at: int, requested: str) -> dict[str, Any]:
    """What a branch replays, for its ``branched_from``: the recorded agent and category, the
    turns and agent calls replayed (not the new agent's), the pressure messages the prefix
    showed, and the category requested for the live part."""
    started = recorded.started
    prefix = [e for e in recorded.events if e.turn < at]
    return {
        "recorded_agent": started.agent if started is not None else None,
        "recorded_category": started.category if started is not None else None,
        "requested_category": requested,
        "replayed_turns": at - 1,
        "replayed_agent_calls": sum(1 for e in prefix if isinstance(e, AgentTurnEvent)),
        "replayed_pressure": [
            {"category": e.category, "level": e.level}
            for e in prefix
            if isinstance(e, PressureEvent)
        ],
    }


def load_recorded_episode(source_run: Path, episode_id: str) -> tuple[RunStore, Trajectory]:
    store = RunStore(source_run)
    store.read_manifest()  # a clear error when this is not a run directory
    if not store.trajectory_path(episode_id).exists():
        known = sorted(p.stem for p in store.trajectories_dir.glob("*.jsonl"))[:5]
        raise BranchError(
            f"no episode {episode_id!r} in {source_run} (for example: {', '.join(known)})"
        )
    return store, store.read_trajectory(episode_id)


def branch_config(
    source: RunConfig,
    recorded: Trajectory,
    *,
    agent: Any,
    category: str | None = None,
) -> RunConfig:
    """The one-episode run a branch needs: the recording's scenario and naming, a new agent."""
    started = recorded.started
    assert started is not None
    chosen = category or started.category
    return source.model_copy(
        update={
            "agents": [agent],
            "scenario_ids": [started.scenario_id],
            "categories": [] if chosen == "baseline" else [chosen],
            "include_baseline": chosen == "baseline",
            "namings": [started.naming],
            "repeats": 1,
            "limit": None,
            "shard": None,
        }
    )


async def branch_run(
    source_run: Path,
    episode_id: str,
    at: int,
    agent: AgentSpec,
    out_dir: Path,
    *,
    category: str | None = None,
    progress: ProgressSink | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> RunResult:
    """Continue ``episode_id`` of ``source_run`` from step ``at`` with ``agent`` (and, if given,
    another pressure category) as a new one-episode run in ``out_dir``."""
    store, recorded = await asyncio.to_thread(load_recorded_episode, source_run, episode_id)
    check_branchable(recorded, at)
    manifest = await asyncio.to_thread(store.read_manifest)
    source = await asyncio.to_thread(source_run.resolve)
    config = branch_config(manifest.config, recorded, agent=agent, category=category)
    config = config.model_copy(update={"suite": pack_source(manifest)})
    point = BranchPoint(source_run=str(source), episode_id=episode_id, at=at)
    return await start_run(
        config, out_dir, branch=Branch(recorded, point), progress=progress, log=log
    )
