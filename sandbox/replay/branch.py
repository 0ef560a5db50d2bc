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

from sandbox.agents import AgentSpec
from sandbox.results.store import RunStore
from sandbox.runtime.branching import (
    Branch,
    BranchError,
    BranchPoint,
    BranchRunner,
    Divergence,
    check_branchable,
    recorded_turns,
    replay_facts,
)
from sandbox.runtime.config import RunConfig
from sandbox.runtime.orchestrator import ProgressSink, RunResult
from sandbox.runtime.runs import pack_source, start_run
from scenarios.records import Trajectory

# The runtime half (the runner, the branch point) lives in ``sandbox.runtime.branching``;
# re-exported.
__all__ = [
    "Branch",
    "BranchError",
    "BranchPoint",
    "BranchRunner",
    "Divergence",
    "branch_config",
    "branch_episode_id",
    "branch_run",
    "check_branch_point",
    "check_branchable",
    "last_branch_step",
    "load_recorded_episode",
    "recorded_turns",
    "replay_facts",
]


def branch_episode_id(episode_id: str, point: BranchPoint) -> str:
    """The marked id of an episode branched at ``point`` (see ``BranchPoint.mark``)."""
    return point.mark(episode_id)


def last_branch_step(trajectory: Trajectory) -> tuple[int, str | None]:
    """The largest step a branch of ``trajectory`` can start at, and why the one after the
    last recorded step cannot (None when it can). Found with :func:`check_branchable` itself,
    so it never names a step that check then refuses."""
    last = recorded_turns(trajectory) + 1
    why: str | None = None
    while last > 1:
        try:
            check_branchable(trajectory, last)
        except BranchError as exc:
            why = why or str(exc)
            last -= 1
            continue
        break
    return last, why


def check_branch_point(trajectory: Trajectory, at: int) -> None:
    """Refuse ``--at`` outside 1..the largest usable step with one message that names that
    step and why, before anything runs (then :func:`check_branchable`'s own checks)."""
    if trajectory.started is None:
        check_branchable(trajectory, at)  # its "no start event" error
    last, why = last_branch_step(trajectory)
    if not 1 <= at <= last:
        turns = recorded_turns(trajectory)
        episode = trajectory.episode_id
        usable = "1" if last == 1 else f"1-{last}"
        if at < 1:
            raise BranchError(
                f"--at {at}: steps count from 1 (step K is agent turn K); episode {episode} "
                f"has {turns} step(s), so --at must be {usable}"
            )
        detail = ""
        if why:
            detail = f" (--at {last + 1}: " + why.replace(f"episode {episode} ", "it ", 1) + ")"
        raise BranchError(
            f"--at {at}: episode {episode} has {turns} step(s); --at must be at most {last} "
            f"(usable: {usable}; step K is agent turn K, counting from 1){detail}"
        )
    check_branchable(trajectory, at)


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
    check_branch_point(recorded, at)
    manifest = await asyncio.to_thread(store.read_manifest)
    source = await asyncio.to_thread(source_run.resolve)
    config = branch_config(manifest.config, recorded, agent=agent, category=category)
    config = config.model_copy(update={"suite": pack_source(manifest)})
    point = BranchPoint(source_run=str(source), episode_id=episode_id, at=at)
    return await start_run(
        config, out_dir, branch=Branch(recorded, point), progress=progress, log=log
    )
