"""Propensity Sandbox's harness: the public API of its parts (``runtime``, ``results``,
``agents``, ``pressure``, ``environments``, ``replay``, ``cli``; docs/architecture.md)."""

from sandbox.llm import litellm  # noqa: F401  (sets offline-safe litellm defaults first)
from sandbox.results.merge import MergeError, merge_runs
from sandbox.results.redaction import Redactor
from sandbox.results.store import Manifest, RunStore, TrajectoryWriter
from sandbox.results.summary import RunSummary, build_summary
from sandbox.runtime.config import (
    EpisodeSpec,
    RetryPolicy,
    RunConfig,
    Shard,
    agent_slug,
    episode_id,
    episode_seed,
)
from sandbox.runtime.errors import RunError
from sandbox.runtime.expansion import expand_episodes
from sandbox.runtime.kinds import EpisodeKind, EpisodeRunner, RunContext, register_kind
from sandbox.runtime.orchestrator import Orchestrator, RunResult
from sandbox.runtime.runs import resume_run, start_run
from sandbox.runtime.turn_loop import EpisodeOutcome, TurnLoop

__all__ = [
    "EpisodeKind",
    "EpisodeOutcome",
    "EpisodeRunner",
    "EpisodeSpec",
    "Manifest",
    "MergeError",
    "Orchestrator",
    "Redactor",
    "RetryPolicy",
    "RunConfig",
    "RunContext",
    "RunError",
    "RunResult",
    "RunStore",
    "RunSummary",
    "Shard",
    "TrajectoryWriter",
    "TurnLoop",
    "agent_slug",
    "build_summary",
    "episode_id",
    "episode_seed",
    "expand_episodes",
    "merge_runs",
    "register_kind",
    "resume_run",
    "start_run",
]
