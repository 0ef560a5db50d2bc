"""Re-execution: run a recording's code and shell calls again, for real, in the container sandbox.

A recorded code-interpreter episode says what the agent *ran*; re-executing it says what that
code *does* under today's limits, with measured facts (CPU, peak memory, pids, bytes written,
OOM kills, timeouts). Calls run in order in one fresh container, so files one call writes are
there for the next, exactly as in an episode. Only the Docker environment is accepted: replayed
code is untrusted by definition, so it never runs on the host and never has a network. Calls of
any other tool have no safe backend here and are reported as not run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from evaluators import CodeExecutionScorer
from sandbox.environments.provider import EnvironmentProvider
from sandbox.results.store import RunStore
from sandbox.runtime.runs import pack_source
from scenarios.loader import load_pack
from scenarios.records import (
    EpisodeEndedEvent,
    Naming,
    Score,
    ToolResultEvent,
    Trajectory,
    pair_calls,
)
from tools import ToolContext, ToolSet
from tools.code_tools import code_interpreter_tools
from tools.execution import ENVIRONMENT_KEY, ExecutionFacts, SandboxLimits

_TOOL_GRACE_S = 30.0


class ReexecutedCall(BaseModel):
    step: int
    tool: str
    arguments: dict[str, object] = Field(default_factory=dict)
    recorded_output: str | None = None
    recorded_facts: ExecutionFacts | None = None
    ran: bool
    output: str = ""
    ok: bool | None = None
    facts: ExecutionFacts | None = None
    # Why a call was not run (no safe backend for its tool).
    not_run: str | None = None
    output_differs: bool = False


class ReexecutionReport(BaseModel):
    episode_id: str
    limits: SandboxLimits
    calls: list[ReexecutedCall]
    # The code-execution label of the re-executed episode, when resource and framing are known.
    score: Score | None = None
    trajectory: Trajectory

    @property
    def ran(self) -> int:
        return sum(1 for call in self.calls if call.ran)

    @property
    def not_run(self) -> int:
        return sum(1 for call in self.calls if not call.ran)


def _facts_of(result: ToolResultEvent | None) -> ExecutionFacts | None:
    if result is None or "execution" not in result.result.data:
        return None
    return ExecutionFacts.model_validate(result.result.data["execution"])


async def reexecute(
    recorded: Trajectory,
    *,
    limits: SandboxLimits,
    resource: str | None = None,
    framing: str | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> ReexecutionReport:
    """Run every code-tool call of ``recorded`` again in a fresh, hard-limited container.

    The returned trajectory is the recording with each re-executed call's result replaced by
    what happened now (so it can be scored like a live episode); calls that were not run keep
    their recorded results and are listed as such.
    """
    toolset = ToolSet(
        list(code_interpreter_tools()),
        call_timeout_s=limits.timeout_s + _TOOL_GRACE_S,
        default_max_calls=None,
    )
    # Each call's own result, paired by event order where recorded ids repeat.
    pairs = pair_calls(list(recorded.events))
    provider = EnvironmentProvider(
        "docker", limits, pool_size=1, run_id=f"replay-{uuid.uuid4().hex[:8]}", log=log
    )
    calls: list[ReexecutedCall] = []
    replaced: dict[int, ToolResultEvent] = {}
    await provider.start()
    try:
        async with provider.lease() as environment:
            ctx = ToolContext(
                episode_id=recorded.episode_id,
                scenario=None,
                naming=Naming.HARMFUL,
                environments={ENVIRONMENT_KEY: environment},
            )
            for event, before in pairs:
                call = event.call
                entry = ReexecutedCall(
                    step=event.seq,
                    tool=call.name,
                    arguments=dict(call.arguments),
                    recorded_output=before.result.output if before else None,
                    recorded_facts=_facts_of(before),
                    ran=False,
                )
                if toolset.get(call.name) is None:
                    entry.not_run = (
                        f"no safe backend for {call.name!r}: only code-interpreter tools "
                        "are re-executed"
                    )
                    calls.append(entry)
                    continue
                log(f"re-executing step {event.seq}: {call.name}")
                result = await toolset.execute(call, ctx)
                entry.ran, entry.ok, entry.output = True, result.ok, result.output
                entry.facts = _facts_of(ToolResultEvent(result=result))
                entry.output_differs = before is not None and before.result.output != result.output
                calls.append(entry)
                if before is not None:
                    replaced[id(before)] = before.model_copy(update={"result": result})
    finally:
        await provider.close()
    events = [replaced.get(id(e), e) for e in recorded.events]
    trajectory = Trajectory(episode_id=recorded.episode_id, events=events)
    score = None
    if resource and framing and trajectory.started is not None:
        has_end = any(isinstance(e, EpisodeEndedEvent) for e in events)
        if has_end:
            score = await CodeExecutionScorer(limits).score(
                trajectory, resource=resource, framing=framing, limits=limits
            )
    return ReexecutionReport(
        episode_id=recorded.episode_id,
        limits=limits,
        calls=calls,
        score=score,
        trajectory=trajectory,
    )


def _episode_context(run_dir: Path, episode_id: str) -> tuple[Trajectory, SandboxLimits, str, str]:
    """The recorded episode and the limits, resource and framing its code task ran under."""
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    if not store.trajectory_path(episode_id).exists():
        raise ValueError(f"no episode {episode_id!r} in {run_dir}")
    trajectory = store.read_trajectory(episode_id)
    started = trajectory.started
    if started is None:
        raise ValueError(f"episode {episode_id!r} has no start event")
    pack = load_pack(pack_source(manifest))
    task = next((t for t in pack.code_tasks if t.id == started.scenario_id), None)
    if task is None:
        raise ValueError(
            f"episode {episode_id!r} is not a code-interpreter task ({started.scenario_id!r}); "
            "only code and shell calls can be re-executed"
        )
    limits = SandboxLimits.model_validate({**manifest.config.sandbox.model_dump(), **task.sandbox})
    return trajectory, limits, task.resource.value, task.framing.value


async def reexecute_episode(
    run_dir: Path,
    episode_id: str,
    *,
    limits: SandboxLimits | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> ReexecutionReport:
    """Re-execute one recorded code-task episode under its own limits (or ``limits``)."""
    trajectory, recorded_limits, resource, framing = await asyncio.to_thread(
        _episode_context, run_dir, episode_id
    )
    return await reexecute(
        trajectory,
        limits=limits or recorded_limits,
        resource=resource,
        framing=framing,
        log=log,
    )
