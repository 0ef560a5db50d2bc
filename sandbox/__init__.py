"""The runtime: orchestrator, agents, pressure, run store, reports and the CLI."""

from sandbox.config import EpisodeSpec, RetryPolicy, RunConfig, Shard, expand_episodes
from sandbox.episode import EpisodeOutcome, EpisodeRunner
from sandbox.llm import litellm  # noqa: F401  (sets offline-safe litellm defaults first)
from sandbox.merge import MergeError, merge_runs
from sandbox.orchestrator import Orchestrator, RunError, RunResult, resume_run, start_run
from sandbox.redaction import Redactor
from sandbox.store import Manifest, RunStore
from sandbox.summary import RunSummary, build_summary

__all__ = [
    "EpisodeOutcome",
    "EpisodeRunner",
    "EpisodeSpec",
    "Manifest",
    "MergeError",
    "Orchestrator",
    "Redactor",
    "RetryPolicy",
    "RunConfig",
    "RunError",
    "RunResult",
    "RunStore",
    "RunSummary",
    "Shard",
    "build_summary",
    "expand_episodes",
    "merge_runs",
    "resume_run",
    "start_run",
]
