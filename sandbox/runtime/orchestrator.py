"""Running a suite's episodes: bounded concurrency, journaled, timed out, scored, recorded.

The orchestrator knows no kind of episode by name: each kind (``sandbox.runtime.kinds``) checks
the run, starts and closes the services its episodes share, gives each episode's runner and
scores it. The orchestrator schedules the episodes, journals them, holds each to its time limit,
turns crashes into recorded infrastructure errors (never behaviour), adds the protocol-health
score every episode gets, and writes the summary.

The journal is the source of truth for what has happened: an episode is `pending` until a worker
takes it, `running` while it runs, and `done` (scored) or `errored` (not scored) at the end.
A resumed run re-runs exactly the episodes that never reached a final state.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from evaluators.protocol_health import score_protocol
from sandbox.agents import Agent, AgentError, create_agent
from sandbox.agents.local_agent import LocalModelAgent
from sandbox.results.store import RunStore, TrajectoryWriter
from sandbox.results.summary import RunSummary, build_summary
from sandbox.runtime.config import EpisodeSpec, RunConfig
from sandbox.runtime.errors import RunError
from sandbox.runtime.kinds.base import EpisodeKind, RunContext, run_kinds
from sandbox.runtime.services import RunServices
from sandbox.runtime.turn_loop import EpisodeOutcome, TurnLoop
from scenarios.model import Pack
from scenarios.records import (
    AgentTurnEvent,
    EpisodeEndedEvent,
    EpisodeStatus,
    ErrorEvent,
    JournalEntry,
    Score,
    Trajectory,
    Usage,
)
from tools import ToolRegistry, default_registry
from tools.execution import SandboxInfrastructureError

# What builds a run's kind from the run: a registered kind class, or a wrapper around one (a
# branched replay's).
KindFactory = Callable[[RunContext], EpisodeKind]


class ProgressSink(Protocol):
    """Told when the run starts and as each episode ends. A sink may also have an
    ``agent_call(spec)`` method: it is then told as each agent call (every attempt) goes out,
    so a display can show a slow model working; sinks without it work as before."""

    def start(self, total: int, completed: int) -> None: ...

    def advance(self, spec: EpisodeSpec, status: EpisodeStatus) -> None: ...


class _NoProgress:
    def start(self, total: int, completed: int) -> None:
        return None

    def advance(self, spec: EpisodeSpec, status: EpisodeStatus) -> None:
        return None


@dataclass
class RunResult:
    run_dir: Path
    summary: RunSummary
    ran: int
    skipped: int
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class EpisodeResult:
    """What running one episode gave, wherever it ran (this process or a Ray worker): how it
    ended, its scores (none unless it is done), the agent calls it made (every attempt) and
    their usage, and the protocol switches of its turns. Its trajectory is in the run store."""

    outcome: EpisodeOutcome
    scores: list[Score] = field(default_factory=list)
    calls: int = 0
    usage: Usage | None = None
    switches: list[dict[str, object]] = field(default_factory=list)


class EpisodeExecutor(Protocol):
    """Where a run's episodes execute (``RunConfig.executor``): this process (the default), or
    a Ray cluster (``sandbox.runtime.ray_executor``). The orchestrator keeps the journal, the
    scores and the progress; an executor starts what its episodes need, runs one episode so
    that its trajectory ends up in the run store, and closes."""

    # Episodes the orchestrator keeps in flight at once.
    slots: int

    def prepare(self) -> None:
        """Refuse the run before anything is written (raise :class:`RunError`), e.g. a
        cluster that cannot be reached."""
        ...

    async def start(self, todo: Sequence[EpisodeSpec]) -> None: ...

    async def run(self, spec: EpisodeSpec) -> EpisodeResult: ...

    async def close(self) -> None: ...


# Error events written for a failed agent call (one per attempt), as opposed to the harness's
# own crash records (episode_timeout, harness_error, sandbox_error).
_AGENT_ERROR_KINDS = frozenset(
    {"AgentError", "TransientAgentError", "PermanentAgentError", "ContextLengthError",
     "ToolsUnsupportedError"}
)  # fmt: skip


def _unfinished(kind: str, outcome: object, trajectory: Trajectory) -> tuple[str, str, str] | None:
    """Why a runner's return is no finished episode (None when it is one): its outcome must be
    an ``EpisodeOutcome`` that is done or errored, and the trajectory must end the same way
    (``TurnLoop.end``), or a resume would find the episode cut and run it again."""
    if not isinstance(outcome, EpisodeOutcome):
        message = f"run() returned {type(outcome).__name__}, not an EpisodeOutcome"
    elif outcome.status not in (EpisodeStatus.DONE, EpisodeStatus.ERRORED):
        message = f"run() ended the episode {outcome.status.value!r} (done or errored only)"
    elif trajectory.ended is None or trajectory.ended.status is not outcome.status:
        message = "run() returned without ending the episode with TurnLoop.end()"
    else:
        return None
    return ("harness_error", f"kind {kind!r}: {message}", "")


def _usage_of(runner: TurnLoop) -> tuple[int, Usage | None]:
    """Agent calls made (every attempt: answered turns, retried failures, and the attempts of
    a turn that finally failed) and the tokens they used."""
    calls = 0
    total: Usage | None = None
    for event in runner.writer.trajectory.events:
        if isinstance(event, AgentTurnEvent):
            calls += 1  # its failed attempts before it are error events, counted below
            if event.usage is not None:
                total = total or Usage(cost_usd=0.0)
                total.add(event.usage)
        elif isinstance(event, ErrorEvent) and event.kind in _AGENT_ERROR_KINDS:
            calls += 1
    return calls, total


class Orchestrator:
    """Runs ``episodes`` (the run's whole expansion; a resume skips those already final).

    ``kinds`` build the run's kinds of episode (default: the registered kinds
    ``config.kinds`` names, or the built-in ones); every episode's ``kind`` must be one of
    them. Raises :class:`RunError` from :meth:`prepare` (and so :meth:`execute`) when the run
    cannot start."""

    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        pack: Pack,
        episodes: Sequence[EpisodeSpec],
        *,
        registry: ToolRegistry = default_registry,
        progress: ProgressSink | None = None,
        log: Callable[[str], None] = lambda _: None,
        kinds: Sequence[KindFactory] | None = None,
        executor: Callable[[Orchestrator], EpisodeExecutor] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.pack = pack
        self.episodes = list(episodes)
        self.progress = progress or _NoProgress()
        self.agent_call: Callable[[EpisodeSpec], None] = getattr(
            self.progress, "agent_call", lambda _: None
        )
        self.log = log
        self.services = RunServices(config, log)
        self.context = RunContext(
            config=config,
            pack=pack,
            store=store,
            registry=registry,
            services=self.services,
            log=log,
        )
        try:
            factories = list(kinds) if kinds is not None else list(run_kinds(config))
        except LookupError as exc:
            raise RunError(str(exc)) from None
        self.kinds: dict[str, EpisodeKind] = {}
        for factory in factories:
            kind = factory(self.context)
            self.kinds[kind.name] = kind
        stray = sorted(set(config.kind_options) - set(self.kinds))
        if stray:
            raise RunError(
                f"--kind-option for {', '.join(stray)}, not a kind of this run "
                f"({', '.join(self.kinds)})"
            )
        unknown = sorted({spec.kind for spec in self.episodes} - set(self.kinds))
        if unknown:
            raise RunError(
                f"episodes of kind(s) {', '.join(unknown)} but the run has only "
                f"{', '.join(self.kinds) or 'none'}"
            )
        self._agents: dict[str, Agent] = self.context.agents
        self.executor: EpisodeExecutor = (
            executor(self) if executor is not None else LocalExecutor(self)
        )
        self._prepared = False
        self.counts: dict[str, int] = {"done": 0, "errored": 0}
        self._switches: list[dict[str, object]] = []

    def prepare(self) -> None:
        """Refuse the run before anything is written if a kind refuses it or an agent cannot
        be built. Raises :class:`RunError`; calling it again does nothing."""
        if self._prepared:
            return
        self.services.check()
        for kind in self.kinds.values():
            try:
                kind.check()
            except RunError:
                raise
            except Exception as exc:  # a kind's bug refuses the run, naming the kind
                raise RunError(
                    f"kind {kind.name!r} failed its check: {type(exc).__name__}: {exc}"
                ) from exc
        for spec in self.config.agents:
            try:
                self._agents[spec.label] = create_agent(
                    spec, call_timeout_s=self.config.call_timeout_s
                )
            except AgentError as exc:
                raise RunError(f"agent {spec.label!r}: {exc}") from exc
        self.executor.prepare()
        self._prepared = True

    async def _run_one(self, spec: EpisodeSpec, attempt: int) -> None:
        self.store.journal(
            JournalEntry(episode_id=spec.id, status=EpisodeStatus.RUNNING, attempt=attempt)
        )
        result = await self.executor.run(spec)
        if result.outcome.status is EpisodeStatus.DONE:
            self.store.append_scores(result.scores)
        self._switches.extend(result.switches)
        self.store.journal(
            JournalEntry(
                episode_id=spec.id,
                status=result.outcome.status,
                attempt=attempt,
                reason=result.outcome.reason,
                error=result.outcome.error,
                llm_calls=result.calls,
                usage=result.usage,
                evaluators=(
                    sorted({s.evaluator for s in result.scores})
                    if result.outcome.status is EpisodeStatus.DONE
                    else None
                ),
            )
        )
        self.counts[result.outcome.status.value] += 1
        self.progress.advance(spec, result.outcome.status)

    async def execute_episode(self, spec: EpisodeSpec) -> EpisodeResult:
        """Run and score one episode in this process, its trajectory written to the store; a
        crash of the kind, the agent or the sandbox ends it errored (infrastructure), never
        as behaviour. The journal is the caller's (:meth:`_run_one`)."""
        writer = self.store.open_trajectory(spec.id)
        kind = self.kinds[spec.kind]
        runner: TurnLoop | None = None
        outcome: object = None
        problem: tuple[str, str, str] | None = None  # (reason, message, traceback)
        try:
            async with asyncio.timeout(self.config.episode_timeout_s) as deadline:
                async with kind.runner(spec, writer) as given:
                    if not isinstance(given, TurnLoop):
                        raise TypeError(
                            f"kind {kind.name!r} gave a {type(given).__name__}, not a TurnLoop"
                        )
                    runner = given
                    runner.on_agent_call = self.agent_call
                    outcome = await runner.run()
            if deadline.expired():  # the runner caught the cancellation and went on
                problem = ("episode_timeout", "episode exceeded its time limit", "")
            else:
                problem = _unfinished(kind.name, outcome, writer.trajectory)
        except TimeoutError:
            problem = ("episode_timeout", "episode exceeded its time limit", "")
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the run itself is being cancelled
                raise
            problem = (
                "harness_error",
                f"kind {kind.name!r}: the episode raised CancelledError (the run was not "
                "cancelled)",
                traceback.format_exc(),
            )
        except SandboxInfrastructureError as exc:  # the measurer failed, not the agent
            problem = ("sandbox_error", str(exc)[:2000], "")
        except Exception as exc:  # a crash of the harness, a kind or an agent: infrastructure
            problem = ("harness_error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            if problem is not None:
                outcome = self.crash(writer, *problem)
            writer.close()
        assert isinstance(outcome, EpisodeOutcome)
        calls, usage = _usage_of(runner) if runner else (0, None)
        switches: list[dict[str, object]] = [
            {
                "episode_id": spec.id,
                "agent": spec.agent,
                "from": switch.from_protocol,
                "to": switch.to_protocol,
                "reason": switch.reason,
            }
            for switch in (runner.protocol_switches if runner else [])
        ]
        scores: list[Score] = []
        if outcome.status is EpisodeStatus.DONE:
            try:
                # Scoring has its own deadline: a judge that never answers cannot hold the run.
                async with asyncio.timeout(self.config.episode_timeout_s):
                    scores = await self._score(kind, spec, writer.trajectory)
            except TimeoutError:
                outcome = EpisodeOutcome(
                    EpisodeStatus.ERRORED,
                    "scoring_timeout",
                    f"scoring did not finish within {self.config.episode_timeout_s:g} s",
                )
            except Exception as exc:  # an evaluator bug must not end the run or pass as behaviour
                outcome = EpisodeOutcome(
                    EpisodeStatus.ERRORED, "scoring_error", f"{type(exc).__name__}: {exc}"
                )
        return EpisodeResult(outcome, scores, calls, usage, switches)

    async def _score(
        self, kind: EpisodeKind, spec: EpisodeSpec, trajectory: Trajectory
    ) -> list[Score]:
        """The kind's scores and the protocol-health score, checked: each a ``Score`` of this
        episode, one per evaluator (a fresh run and a resumed one keep the same scores).
        Raises ``TypeError``/``ValueError`` (recorded as ``scoring_error``) otherwise."""
        given = await kind.score(spec, trajectory)
        if not isinstance(given, list) or not all(isinstance(s, Score) for s in given):
            raise TypeError(f"kind {kind.name!r}: score() must return a list of Score records")
        scores = [*given, score_protocol(trajectory)]
        for score in scores:
            if score.episode_id != spec.id:
                raise ValueError(
                    f"kind {kind.name!r} gave a score for episode {score.episode_id!r} while "
                    f"scoring {spec.id!r}"
                )
        twice = sorted(e for e, n in Counter(s.evaluator for s in scores).items() if n > 1)
        if twice:
            raise ValueError(
                f"kind {kind.name!r} gave more than one score per evaluator: {', '.join(twice)}"
            )
        # Every score says whose episode it is and which kind scored it, whatever the kind
        # (the summary keeps a plugin kind's scores out of the built-in sections by it).
        return [
            s.model_copy(update={"details": {"agent": spec.agent, **s.details, "kind": spec.kind}})
            for s in scores
        ]

    def crash(
        self, writer: TrajectoryWriter, reason: str, message: str, trace: str = ""
    ) -> EpisodeOutcome:
        """End the episode ``errored``: the error event keeps the message and the end of the
        traceback (where the kind or the agent failed), cut at a line and marked where cut, in
        2,000 characters; the journal the message."""
        detail = message[:1000]
        if trace:
            room = 1990 - len(detail)
            tail = trace
            if len(trace) > room:  # cut: start at a whole line, and say so
                header = "Traceback (most recent call last, cut):\n"
                tail = header + trace[-(room - len(header)) :].partition("\n")[2]
            detail = f"{detail}\n{tail}"
        writer.write(ErrorEvent(kind=reason, message=detail[:2000]))
        writer.write(EpisodeEndedEvent(status=EpisodeStatus.ERRORED, reason=reason))
        return EpisodeOutcome(EpisodeStatus.ERRORED, reason, message)

    async def start_agents(self) -> None:
        """Agents with a start-up (local models start their server) start before any episode,
        so a broken setup fails the run once instead of erroring every episode."""
        if self.config.concurrency > 1 and any(
            isinstance(agent, LocalModelAgent) for agent in self._agents.values()
        ):
            self.log(
                "[yellow]note: a local model evaluates one request at a time and keeps only the "
                "last prompt evaluated; --concurrency 1 runs its episodes fastest"
            )
        for label, agent in self._agents.items():
            start = getattr(agent, "start", None)
            if start is None:
                continue
            try:
                await start()
            except AgentError as exc:
                raise RunError(f"agent {label!r}: {exc}") from exc

    async def run_episodes(self, episodes: Sequence[EpisodeSpec], attempts: dict[str, int]) -> None:
        """Run ``episodes`` through the executor, as many at once as it has slots."""
        queue: asyncio.Queue[EpisodeSpec] = asyncio.Queue()
        for spec in episodes:
            queue.put_nowait(spec)

        async def worker() -> None:
            while True:
                try:
                    spec = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await self._run_one(spec, attempts.get(spec.id, 0) + 1)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.executor.slots, max(1, len(episodes)))):
                group.create_task(worker())

    async def start_kinds(self, todo: Sequence[EpisodeSpec]) -> None:
        """Start every kind with its episodes of ``todo``; raises :class:`RunError` (nothing
        ran) when one cannot start."""
        for name, kind in self.kinds.items():
            try:
                await kind.start([spec for spec in todo if spec.kind == name])
            except RunError:
                raise
            except Exception as exc:
                raise RunError(
                    f"kind {name!r} could not start: {type(exc).__name__}: {exc} (nothing "
                    "ran; the run resumes with --resume once it can start)"
                ) from exc

    async def close_agents(self) -> None:
        for agent in self._agents.values():
            await agent.aclose()

    async def close_kinds(self) -> None:
        """Close every kind, then the shared services; a close that fails is said and the
        others still run (the episodes' records are already complete)."""
        for name, kind in self.kinds.items():
            try:
                await kind.close()
            except Exception as exc:
                self.log(
                    f"[yellow]warning: kind {name!r} failed to close: {type(exc).__name__}: {exc}"
                )
        await self.services.close()

    def _resume_plan(self, retry_errored: bool) -> tuple[list[EpisodeSpec], dict[str, int]]:
        """The episodes a resume runs again, and each one's attempts so far."""
        self.store.repair_tails()
        states = self.store.latest_states()
        keep = {
            eid
            for eid, entry in states.items()
            if entry.status is EpisodeStatus.DONE
            or (entry.status is EpisodeStatus.ERRORED and not retry_errored)
        }
        # A "done" episode whose trajectory was cut (a kill between its last event and the
        # journal, a full disk) is not done: it runs again.
        cut = sorted(
            eid
            for eid in keep
            if states[eid].status is EpisodeStatus.DONE and not self.store.trajectory_complete(eid)
        )
        if cut:
            self.log(
                f"{len(cut)} episode(s) marked done have an incomplete trajectory and run "
                f"again: {', '.join(cut[:5])}{' ...' if len(cut) > 5 else ''}"
            )
            keep -= set(cut)
        # A "done" episode missing scores in scores.jsonl (all of them, or one evaluator's
        # that its journal entry names) is not done either: it runs again.
        missing = self.store.unscored({eid: states[eid] for eid in keep})
        if missing:
            unscored = sorted(missing)
            self.log(
                f"{len(unscored)} episode(s) marked done have scores missing and run again: "
                + ", ".join(
                    f"{e} (missing {', '.join(missing[e]) or 'every score'})" for e in unscored[:5]
                )
                + (" ..." if len(unscored) > 5 else "")
            )
            keep -= set(unscored)
        self.store.keep_scores_of(keep)
        todo = [spec for spec in self.episodes if spec.id not in keep]
        manifest = self.store.read_manifest()
        manifest.resumed_at.append(time.time())
        manifest.finished_at = None
        # The run's episodes: what its configuration expands to now, and any episode the
        # journal holds besides (a merged run recorded before merges counted its gaps, a
        # pack that lost a scenario): the summary counts each of them once.
        manifest.episodes_total = len({spec.id for spec in self.episodes} | set(states))
        self.store.write_manifest(manifest)
        return todo, {eid: entry.attempt for eid, entry in states.items()}

    async def execute(self, *, resume: bool, retry_errored: bool = False) -> RunResult:
        """Run what is left (everything at the start; see :meth:`_resume_plan` on resume),
        then write the summary and finish the manifest."""
        self.prepare()
        attempts: dict[str, int] = {}
        if resume:
            todo, attempts = self._resume_plan(retry_errored)
        else:
            self.store.journal_many(
                [JournalEntry(episode_id=s.id, status=EpisodeStatus.PENDING) for s in self.episodes]
            )
            todo = list(self.episodes)
        self.progress.start(len(self.episodes), len(self.episodes) - len(todo))
        try:
            await self.executor.start(todo)
            await self.run_episodes(todo, attempts)
        finally:
            await self.executor.close()
        summary = build_summary(self.store)
        self.store.write_json("summary.json", summary.model_dump(mode="json"))
        manifest = self.store.read_manifest()
        manifest.finished_at = time.time()
        manifest.protocol_switches.extend(self._switches)
        self.store.write_manifest(manifest)
        self.store.close()
        return RunResult(
            run_dir=self.store.root,
            summary=summary,
            ran=len(todo),
            skipped=len(self.episodes) - len(todo),
            counts=dict(self.counts),
        )


class LocalExecutor:
    """Episodes run in this process, ``config.concurrency`` at once: the default executor."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.slots = orchestrator.config.concurrency

    def prepare(self) -> None:
        return None

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        await self.orchestrator.start_kinds(todo)
        await self.orchestrator.start_agents()

    async def run(self, spec: EpisodeSpec) -> EpisodeResult:
        return await self.orchestrator.execute_episode(spec)

    async def close(self) -> None:
        try:
            await self.orchestrator.close_agents()
        finally:
            await self.orchestrator.close_kinds()
