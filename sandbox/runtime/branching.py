"""Branching on the runtime: an episode runner whose first K-1 turns come from a recording.

The runtime part of a branched replay (``propensity replay branch``; the command and its run are
``sandbox.replay.branch``): where a branch starts (``BranchPoint``), the recorded episode it
continues (``Branch``), ``BranchRunner``, the propensity kind's
:class:`~sandbox.runtime.kinds.propensity.EpisodeRunner` that first re-executes the recorded
prefix against fresh tools, writes what the agent saw, and continues live, and
``BranchedKind``, the propensity kind wrapped to give that runner. A branch run is an ordinary
run whose kinds include the wrapped one (``branch_kinds``): the orchestrator knows nothing of
branching, and the runtime imports nothing of ``sandbox.replay`` (no import cycle).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from sandbox.results.store import TrajectoryWriter
from sandbox.runtime.config import EpisodeSpec, RunConfig
from sandbox.runtime.kinds.base import EpisodeKind, RunContext, run_kinds
from sandbox.runtime.kinds.propensity import EpisodeRunner, PropensityKind
from sandbox.runtime.turn_loop import EpisodeOutcome, TurnLoop
from scenarios.model import Pack
from scenarios.records import (
    AgentTurnEvent,
    MessageEvent,
    PressureEvent,
    Score,
    ToolCallEvent,
    ToolResultEvent,
    Trajectory,
    pair_calls,
)


class BranchPoint(BaseModel):
    """Where a branched replay starts: step ``at`` (an agent turn, 1-based) of a recording."""

    source_run: str
    episode_id: str
    at: int = Field(ge=1)

    def mark(self, episode_id: str) -> str:
        """The id of the episode branched from here: the id its run would give it, marked
        ``.branch-sK-HASH`` (K: the first live step; HASH: of the source episode's id), so a
        branched episode is never taken for (nor merged over) an ordinary one. Stays within
        ``MAX_BRANCHED_ID`` characters (``EPISODE_ID_PATTERN``) by shortening the base,
        keeping a hash of the whole, when it must."""
        source = hashlib.sha256(self.episode_id.encode()).hexdigest()[:8]
        marker = f".branch-s{self.at}-{source}"
        if len(episode_id) + len(marker) > MAX_BRANCHED_ID:
            digest = hashlib.sha256(episode_id.encode()).hexdigest()[:8]
            episode_id = f"{episode_id[: MAX_BRANCHED_ID - len(marker) - 9]}-{digest}"
        return episode_id + marker


MAX_BRANCHED_ID = 200  # EPISODE_ID_PATTERN's limit


@dataclass
class Branch:
    """A recorded episode to continue live from a step (see ``sandbox.replay.branch``)."""

    recorded: Trajectory
    point: BranchPoint


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
    """An :class:`EpisodeRunner` whose first K-1 turns come from a recording: built with the
    recording and the branch point, then exactly the propensity runner's arguments."""

    def __init__(
        self, recorded: Trajectory, point: BranchPoint, *runner_args: Any, **runner_kwargs: Any
    ) -> None:
        super().__init__(*runner_args, **runner_kwargs)
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
                self.say(event.message)
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


class BranchedKind(EpisodeKind):
    """The propensity kind whose runner replays ``branch``'s recorded prefix first
    (:class:`BranchRunner`); checks, services and scores are the wrapped kind's."""

    name = PropensityKind.name

    def __init__(self, run: RunContext, branch: Branch) -> None:
        super().__init__(run)
        self.inner = PropensityKind(run)
        self.branch = branch

    @classmethod
    def episodes(cls, config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
        return PropensityKind.episodes(config, pack)

    def check(self) -> None:
        self.inner.check()

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        await self.inner.start(todo)

    async def close(self) -> None:
        await self.inner.close()

    @asynccontextmanager
    async def runner(self, spec: EpisodeSpec, writer: TrajectoryWriter) -> AsyncIterator[TurnLoop]:
        yield BranchRunner(
            self.branch.recorded,
            self.branch.point,
            spec,
            self.inner.scenarios[spec.scenario_id],
            self.run.agents[spec.agent],
            self.run.config,
            writer,
            self.run.registry,
        )

    async def score(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        return await self.inner.score(spec, trajectory)


def branch_kinds(config: RunConfig, branch: Branch) -> list[Callable[[RunContext], EpisodeKind]]:
    """The run's kinds with the propensity kind wrapped to continue ``branch``."""
    return [
        (lambda run: BranchedKind(run, branch)) if kind.name == PropensityKind.name else kind
        for kind in run_kinds(config)
    ]


def check_branch_episodes(episodes: Sequence[EpisodeSpec]) -> None:
    """A branch continues exactly one propensity-scenario episode; ``ValueError`` otherwise."""
    if len(episodes) != 1 or episodes[0].kind != PropensityKind.name:
        raise ValueError("a branch continues exactly one propensity-scenario episode")
