"""Running a suite: episodes expanded, run with bounded concurrency, journaled, scored.

The journal is the source of truth for what has happened: an episode is `pending` until a worker
takes it, `running` while it runs, and `done` (scored) or `errored` (not scored) at the end.
A resumed run re-runs exactly the episodes that never reached a final state.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from evaluators import (
    CodeExecutionScorer,
    IntentFinder,
    JudgeInput,
    LLMIntentFinder,
    LLMJudge,
    RiskyToolChoice,
    RuleIntentFinder,
    RuleJudge,
    judge_trajectory,
    score_world,
)
from evaluators.protocol_health import score_protocol
from sandbox.agents import Agent, AgentError, create_agent
from sandbox.agents.local_agent import LocalModelAgent
from sandbox.branching import Branch, BranchPoint, BranchRunner
from sandbox.code_episode import CodeEpisodeRunner
from sandbox.config import EpisodeSpec, RunConfig, expand_episodes
from sandbox.environments.local_env import WARNING as LOCAL_WARNING
from sandbox.environments.provider import EnvironmentProvider, EnvironmentSetupError
from sandbox.episode import EpisodeOutcome, EpisodeRunner, TurnLoop
from sandbox.local_model import LocalModelError, is_local, local_model, local_servers
from sandbox.manifest import git_revision, interpreter, package_versions
from sandbox.open_episode import OpenEpisodeRunner
from sandbox.plugins import (
    ALL_ROLES,
    check_input_files,
    restore_user_modules,
    run_input_files,
    run_user_modules,
    with_agent_modules,
)
from sandbox.redaction import Redactor, settings_secrets
from sandbox.store import Manifest, RunDirectoryBusy, RunLock, RunStore, TrajectoryWriter
from sandbox.summary import RunSummary, build_summary
from scenarios.loader import ScenarioLoadError, load_pack, resolve_pack_path
from scenarios.model import Pack
from scenarios.records import (
    AgentTurnEvent,
    EpisodeEndedEvent,
    EpisodeStatus,
    ErrorEvent,
    JournalEntry,
    JudgeEvent,
    Score,
    Trajectory,
    Usage,
)
from tools import ToolRegistry, default_registry
from tools.cache import ResponseCache, default_cache_dir
from tools.emulated_backend import load_toolkit_library
from tools.emulator import EmulatorMode, LLMEmulator
from tools.execution import SandboxInfrastructureError, SandboxLimits
from tools.toolkits import Toolkit, ToolkitLoadError, parameters_schema


class RunError(Exception):
    """The run cannot start (bad configuration, unknown agent, unusable run directory)."""


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


# Error events written for a failed agent call (one per attempt), as opposed to the harness's
# own crash records (episode_timeout, harness_error, sandbox_error).
_AGENT_ERROR_KINDS = frozenset(
    {"AgentError", "TransientAgentError", "PermanentAgentError", "ContextLengthError",
     "ToolsUnsupportedError"}
)  # fmt: skip


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


def expand_run(config: RunConfig, pack: Pack, branch: Branch | None = None) -> list[EpisodeSpec]:
    """The run's episodes (``expand_episodes``); a branch run's one episode carries the branch
    marker in its id (``BranchPoint.mark``), the same at start and at resume."""
    episodes = expand_episodes(config, pack)
    if branch is None:
        return episodes
    return [spec.model_copy(update={"id": branch.point.mark(spec.id)}) for spec in episodes]


class Orchestrator:
    def __init__(
        self,
        config: RunConfig,
        store: RunStore,
        pack: Pack,
        *,
        registry: ToolRegistry = default_registry,
        progress: ProgressSink | None = None,
        log: Callable[[str], None] = lambda _: None,
        branch: Branch | None = None,
    ) -> None:
        self.config = config
        self.branch = branch
        self.store = store
        self.pack = pack
        self.registry = registry
        self.progress = progress or _NoProgress()
        self._agent_call: Callable[[EpisodeSpec], None] = getattr(
            self.progress, "agent_call", lambda _: None
        )
        self.evaluator = RiskyToolChoice()
        self.code_scorer = CodeExecutionScorer(
            config.sandbox,
            config.judge_model,
            config.judge_api_base,
            judge_timeout_s=config.call_timeout_s,
        )
        self.log = log
        self._scenarios = {s.id: s for s in pack.scenarios}
        self._code_tasks = {t.id: t for t in pack.code_tasks}
        self._environments: EnvironmentProvider | None = None
        self._task_limits: dict[str, SandboxLimits] = {}
        self._toolkits: dict[str, Toolkit] = {}
        self._emulator: LLMEmulator | None = None
        self._judge: LLMJudge | RuleJudge = RuleJudge()
        self._intent: IntentFinder = RuleIntentFinder()
        self._cache = ResponseCache(
            Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        )
        self._local_models: list[str] = []
        self._agents: dict[str, Agent] = {}
        self.counts: dict[str, int] = {"done": 0, "errored": 0}
        self._switches: list[dict[str, object]] = []

    def prepare(self) -> None:
        """Refuse the run before anything is written if a tool or an agent cannot be built."""
        if self._agents:
            return
        unknown = [p for s in self.pack.scenarios for p in self.registry.check(s)]
        if unknown:
            raise RunError("; ".join(unknown))
        if self.pack.code_tasks and self.config.environment == "local":
            if not self.config.unsafe_local:
                raise RunError(
                    "refusing to run resource-exhaustion code tasks in the local environment, "
                    "which is not a security boundary; use Docker, or pass --unsafe-local on a "
                    "disposable machine"
                )
            self.log(f"[yellow]warning: {LOCAL_WARNING}")
        for role, model in (
            ("judge", self.config.judge_model),
            ("emulator", self.config.emulator_model),
        ):
            if is_local(model):
                try:
                    local_model(str(model))
                except ValueError as exc:
                    raise RunError(f"{role} model: {exc}") from exc
        self._prepare_open_scenarios()
        for task in self.pack.code_tasks:
            try:
                self._task_limits[task.id] = SandboxLimits.model_validate(
                    {**self.config.sandbox.model_dump(), **task.sandbox}
                )
            except ValidationError as exc:
                raise RunError(f"code task {task.id!r}: invalid sandbox limits: {exc}") from exc
        for spec in self.config.agents:
            try:
                self._agents[spec.label] = create_agent(
                    spec, call_timeout_s=self.config.call_timeout_s
                )
            except AgentError as exc:
                raise RunError(f"agent {spec.label!r}: {exc}") from exc

    def _prepare_open_scenarios(self) -> None:
        """Open scenarios need their toolkits and an emulator model, checked before any run."""
        open_scenarios = [s for s in self.pack.scenarios if s.kind == "open"]
        config = self.config
        cache = self._cache
        if config.judge_model and not is_local(config.judge_model):
            self._judge = LLMJudge(
                config.judge_model,
                api_base=config.judge_api_base,
                cache=cache,
                timeout_s=config.call_timeout_s,
            )
            self._intent = LLMIntentFinder(self._judge)
        if not open_scenarios:
            return
        try:
            self._toolkits = load_toolkit_library(config.toolkit_paths)
        except (OSError, ValueError, ToolkitLoadError) as exc:
            raise RunError(f"cannot load toolkits: {exc}") from exc
        missing = sorted({n for s in open_scenarios for n in s.toolkits} - set(self._toolkits))
        if missing:
            raise RunError(
                f"toolkits not found: {', '.join(missing)} (give their specs with --toolkits "
                "PATH: our YAML/JSON toolkits or ToolEmu's all_toolkits.json)"
            )
        if any(s.toolkits for s in open_scenarios) and not config.emulator_model:
            raise RunError("emulated toolkits need --emulator-model (any litellm model)")
        self._emulator = LLMEmulator(
            config.emulator_model or "none",
            mode=EmulatorMode(config.emulator_mode),
            cache=cache,
            api_base=config.emulator_api_base,
            timeout_s=config.call_timeout_s,
        )

    async def _run_one(self, spec: EpisodeSpec, attempt: int) -> None:
        self.store.journal(
            JournalEntry(episode_id=spec.id, status=EpisodeStatus.RUNNING, attempt=attempt)
        )
        writer = self.store.open_trajectory(spec.id)
        runner: TurnLoop | None = None
        try:
            async with asyncio.timeout(self.config.episode_timeout_s):
                if spec.kind == "code_task":
                    assert self._environments is not None
                    task = self._code_tasks[spec.scenario_id]
                    async with self._environments.lease(task.sandbox) as environment:
                        runner = CodeEpisodeRunner(
                            spec,
                            task,
                            self._agents[spec.agent],
                            self.config,
                            writer,
                            environment,
                        )
                        runner.on_agent_call = self._agent_call
                        outcome = await runner.run()
                elif spec.kind == "open":
                    assert self._emulator is not None
                    runner = OpenEpisodeRunner(
                        spec,
                        self._scenarios[spec.scenario_id],
                        self._agents[spec.agent],
                        self.config,
                        writer,
                        self.registry,
                        self._toolkits,
                        self._emulator,
                    )
                    runner.on_agent_call = self._agent_call
                    outcome = await runner.run()
                elif self.branch is not None:
                    runner = BranchRunner(
                        spec,
                        self._scenarios[spec.scenario_id],
                        self._agents[spec.agent],
                        self.config,
                        writer,
                        self.branch.recorded,
                        self.branch.point,
                        self.registry,
                    )
                    runner.on_agent_call = self._agent_call
                    outcome = await runner.run()
                else:
                    runner = EpisodeRunner(
                        spec,
                        self._scenarios[spec.scenario_id],
                        self._agents[spec.agent],
                        self.config,
                        writer,
                        self.registry,
                    )
                    runner.on_agent_call = self._agent_call
                    outcome = await runner.run()
        except TimeoutError:
            outcome = self._crash(writer, "episode_timeout", "episode exceeded its time limit")
        except asyncio.CancelledError:
            writer.close()
            raise
        except SandboxInfrastructureError as exc:  # the measurer failed, not the agent
            outcome = self._crash(writer, "sandbox_error", str(exc)[:2000])
        except Exception as exc:  # a harness or agent-code crash is an infrastructure error
            outcome = self._crash(writer, "harness_error", f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()
        calls, usage = _usage_of(runner) if runner else (0, None)
        for switch in runner.protocol_switches if runner else []:
            self._switches.append(
                {
                    "episode_id": spec.id,
                    "agent": spec.agent,
                    "from": switch.from_protocol,
                    "to": switch.to_protocol,
                    "reason": switch.reason,
                }
            )
        if outcome.status is EpisodeStatus.DONE:
            try:
                # Scoring has its own deadline: a judge that never answers cannot hold the run.
                async with asyncio.timeout(self.config.episode_timeout_s):
                    scores = await self._score(spec, writer.trajectory)
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
            else:
                self.store.append_scores(scores)
        self.store.journal(
            JournalEntry(
                episode_id=spec.id,
                status=outcome.status,
                attempt=attempt,
                reason=outcome.reason,
                error=outcome.error,
                llm_calls=calls,
                usage=usage,
            )
        )
        self.counts[outcome.status.value] += 1
        self.progress.advance(spec, outcome.status)

    async def _score(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        scores = await self._score_kind(spec, trajectory)
        scores.append(score_protocol(trajectory))
        scenario = self._scenarios.get(spec.scenario_id) if spec.kind != "code_task" else None
        graph = scenario.world_graph() if scenario is not None else None
        if graph is not None:
            intent = await self._intent.find(trajectory, graph)
            scores.append(
                score_world(
                    trajectory,
                    graph,
                    stated_intent_steps=intent.steps,
                    intent_method=intent.method,
                )
            )
        return scores

    async def _score_kind(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        if spec.kind == "open":
            scenario = self._scenarios[spec.scenario_id]
            judged = JudgeInput(
                task=scenario.task,
                underspecifications=scenario.underspecifications,
                expected_achievements=scenario.expected_achievements,
                potential_risky_outcomes=scenario.risky_outcomes,
                potential_risky_actions=scenario.risky_actions,
            )
            scores = await judge_trajectory(trajectory, judged, self._judge)
            await asyncio.to_thread(
                self.store.append_events,
                spec.id,
                [
                    JudgeEvent(judge=s.evaluator, score=s.value, label=s.label, verdict=s.details)
                    for s in scores
                ],
            )
            return scores
        if spec.kind == "code_task":
            task = self._code_tasks[spec.scenario_id]
            return [
                await self.code_scorer.score(
                    trajectory,
                    resource=task.resource.value,
                    framing=task.framing.value,
                    limits=self._task_limits[task.id],
                )
            ]
        return [self.evaluator.score(trajectory)]

    def _crash(self, writer: TrajectoryWriter, reason: str, message: str) -> EpisodeOutcome:
        writer.write(ErrorEvent(kind=reason, message=message[:2000]))
        writer.write(EpisodeEndedEvent(status=EpisodeStatus.ERRORED, reason=reason))
        return EpisodeOutcome(EpisodeStatus.ERRORED, reason, message)

    async def _start_agents(self) -> None:
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

    async def _start_local_services(self) -> None:
        """A ``local/`` judge or emulator model gets its server here, shared with agents."""
        config = self.config
        if is_local(config.judge_model):
            name = local_model(str(config.judge_model)).name
            api_base = await self._acquire_local(name)
            self._judge = LLMJudge(
                f"openai/{name}",
                api_base=api_base,
                cache=self._cache,
                timeout_s=config.call_timeout_s,
            )
            self._intent = LLMIntentFinder(self._judge)
            self.code_scorer = CodeExecutionScorer(
                config.sandbox, f"openai/{name}", api_base, judge_timeout_s=config.call_timeout_s
            )
        if is_local(config.emulator_model) and self._emulator is not None:
            name = local_model(str(config.emulator_model)).name
            api_base = await self._acquire_local(name)
            self._emulator = LLMEmulator(
                f"openai/{name}",
                mode=EmulatorMode(config.emulator_mode),
                cache=self._cache,
                api_base=api_base,
                timeout_s=config.call_timeout_s,
            )

    async def _acquire_local(self, name: str) -> str:
        try:
            api_base = await local_servers.acquire(name)
        except LocalModelError as exc:
            raise RunError(str(exc)) from exc
        self._local_models.append(name)
        return api_base

    async def _release_local(self) -> None:
        while self._local_models:
            await local_servers.release(self._local_models.pop())

    async def run_episodes(self, episodes: Sequence[EpisodeSpec], attempts: dict[str, int]) -> None:
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

        workers = min(self.config.concurrency, max(1, len(episodes)))
        try:
            await self._start_agents()
            async with asyncio.TaskGroup() as group:
                for _ in range(workers):
                    group.create_task(worker())
        finally:
            for agent in self._agents.values():
                await agent.aclose()

    async def execute(self, *, resume: bool, retry_errored: bool = False) -> RunResult:
        episodes = expand_run(self.config, self.pack, self.branch)
        self.prepare()
        attempts: dict[str, int] = {}
        if resume:
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
                if states[eid].status is EpisodeStatus.DONE
                and not self.store.trajectory_complete(eid)
            )
            if cut:
                self.log(
                    f"{len(cut)} episode(s) marked done have an incomplete trajectory and run "
                    f"again: {', '.join(cut[:5])}{' ...' if len(cut) > 5 else ''}"
                )
                keep -= set(cut)
            attempts = {eid: entry.attempt for eid, entry in states.items()}
            self.store.keep_scores_of(keep)
            todo = [spec for spec in episodes if spec.id not in keep]
            manifest = self.store.read_manifest()
            manifest.resumed_at.append(time.time())
            manifest.finished_at = None
            # The run's episodes: what its configuration expands to now, and any episode the
            # journal holds besides (a merged run recorded before merges counted its gaps, a
            # pack that lost a scenario): the summary counts each of them once.
            manifest.episodes_total = len({spec.id for spec in episodes} | set(states))
            self.store.write_manifest(manifest)
        else:
            self.store.journal_many(
                [JournalEntry(episode_id=s.id, status=EpisodeStatus.PENDING) for s in episodes]
            )
            todo = list(episodes)
        self.progress.start(len(episodes), len(episodes) - len(todo))
        if any(spec.kind == "code_task" for spec in todo):
            self._environments = EnvironmentProvider(
                self.config.environment,
                self.config.sandbox,
                pool_size=min(self.config.sandbox_pool, self.config.concurrency),
                run_id=self.store.root.name,
                log=self.log,
                fresh=self.config.sandbox_fresh,
            )
            try:
                await self._environments.start()
            except EnvironmentSetupError as exc:
                await self._environments.close()
                raise RunError(str(exc)) from exc
        try:
            await self._start_local_services()
            await self.run_episodes(todo, attempts)
        finally:
            await self._release_local()
            if self._environments is not None:
                await self._environments.close()
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
            skipped=len(episodes) - len(todo),
            counts=dict(self.counts),
        )


def default_run_dir(suite: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(suite).stem if Path(suite).exists() else suite
    return Path("runs") / f"{stamp}-{name}-{uuid.uuid4().hex[:6]}"


def toolkit_tools(library: dict[str, Toolkit]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each toolkit's tools by the qualified name the agent calls them, with their arguments
    schema: what an open scenario's world graph is checked against (``scenarios.checks``)."""
    return {
        name: {kit.qualified_name(tool): parameters_schema(tool) for tool in kit.tools}
        for name, kit in library.items()
    }


def _load(
    suite: str, registry: ToolRegistry = default_registry, toolkit_paths: Sequence[str] = ()
) -> tuple[Pack, Path]:
    """The suite's pack, refused on any error ``propensity validate`` reports, with tools
    checked against the parameters the registry's backends offer (a toolkit's own), and open
    scenarios' world graphs against the toolkit specs of ``toolkit_paths`` (``--toolkits``)."""
    toolkits = None
    if toolkit_paths:
        try:
            toolkits = toolkit_tools(load_toolkit_library(list(toolkit_paths)))
        except (OSError, ValueError, ToolkitLoadError):
            pass  # refused with its reason where the open scenarios are prepared
    try:
        pack = load_pack(suite, parameters_of=registry.parameters_of, toolkits=toolkits)
        return pack, resolve_pack_path(suite)
    except ScenarioLoadError as exc:
        raise RunError(f"suite {suite!r} has problems:\n{exc}") from exc


async def start_run(
    config: RunConfig,
    run_dir: Path,
    *,
    registry: ToolRegistry = default_registry,
    progress: ProgressSink | None = None,
    argv: list[str] | None = None,
    log: Callable[[str], None] = lambda _: None,
    branch: Branch | None = None,
) -> RunResult:
    if (run_dir / "manifest.json").exists():
        holder = RunLock.holder(run_dir)
        if holder is not None:
            raise RunError(f"{run_dir} is in use by another process (pid {holder})")
        raise RunError(f"{run_dir} already holds a run; use --resume {run_dir} to finish it")
    pack, pack_path = _load(config.suite, registry, config.toolkit_paths)
    try:
        episodes = expand_run(config, pack, branch)
    except ValueError as exc:
        raise RunError(str(exc)) from exc
    if not episodes:
        raise RunError("the suite expands to no episodes (check --limit, --shard and filters)")
    store = RunStore(run_dir, redactor=run_redactor(config), log=log)
    if branch is not None and (len(episodes) != 1 or episodes[0].kind != "scenario"):
        raise RunError("a branch continues exactly one propensity-scenario episode")
    orchestrator = Orchestrator(
        config, store, pack, registry=registry, progress=progress, log=log, branch=branch
    )
    orchestrator.prepare()
    with _locked(run_dir):
        if (run_dir / "manifest.json").exists():  # another writer got there first
            raise RunError(f"{run_dir} already holds a run; use --resume {run_dir} to finish it")
        return await _start(orchestrator, store, config, pack, pack_path, episodes, argv, branch)


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    try:
        with RunLock(run_dir):
            yield
    except RunDirectoryBusy as exc:
        raise RunError(str(exc)) from None


async def _start(
    orchestrator: Orchestrator,
    store: RunStore,
    config: RunConfig,
    pack: Pack,
    pack_path: Path,
    episodes: list[EpisodeSpec],
    argv: list[str] | None,
    branch: Branch | None,
) -> RunResult:
    run_dir = store.root
    store.init()
    orchestrator.log(f"run directory: {run_dir}")
    python, plat = interpreter()
    # Inputs the config does not hold: the user code imported (the agents are built by now, so
    # their modules are imported) and the files read; --resume and replay load them again.
    toolkits = {t.toolkit for s in pack.scenarios for t in s.tools if t.backend == "python"}
    user_modules = await asyncio.to_thread(
        run_user_modules, [a.spec for a in config.agents], [t for t in toolkits if t]
    )
    input_files = await asyncio.to_thread(run_input_files, pack_path, config.toolkit_paths)
    cache_dir = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    store.write_manifest(
        Manifest(
            run_id=run_dir.name,
            config=config,
            config_hash=config.identity_hash(),
            pack=pack.name,
            pack_path=str(await asyncio.to_thread(pack_path.resolve)),
            episodes_total=len(episodes),
            seeds={"run": config.seed},
            packages=package_versions(),
            git_revision=await asyncio.to_thread(git_revision),
            python=python,
            platform=plat,
            argv=list(argv if argv is not None else sys.argv),
            branch=branch.point.model_dump() if branch is not None else None,
            user_modules=user_modules,
            input_files=input_files,
            cache_dir=str(cache_dir.expanduser().absolute()),
        )
    )
    return await orchestrator.execute(resume=False)


def run_redactor(config: RunConfig) -> Redactor:
    """What this run must never write: secret-looking environment variables, the variables the
    agents name with --api-key-env (whatever they are called), secrets in settings (api keys,
    header values) and passwords in URLs. Applied to every line of the run directory."""
    secrets = [
        os.environ[agent.api_key_env]
        for agent in config.agents
        if agent.api_key_env and os.environ.get(agent.api_key_env)
    ]
    secrets += settings_secrets(config.model_dump(mode="json"))
    return Redactor(extra=secrets)


def pack_source(manifest: Manifest) -> str:
    """The pack as it was found at the start; its name if that path has since gone."""
    return manifest.pack_path if Path(manifest.pack_path).exists() else manifest.config.suite


async def resume_run(
    run_dir: Path,
    *,
    retry_errored: bool = False,
    concurrency: int | None = None,
    registry: ToolRegistry = default_registry,
    progress: ProgressSink | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> RunResult:
    store = RunStore(run_dir, log=log)
    try:
        manifest = store.read_manifest()
    except (FileNotFoundError, ValueError) as exc:
        raise RunError(str(exc)) from exc
    store.redact = run_redactor(manifest.config)
    with _locked(run_dir):
        return await _resume(store, manifest, retry_errored, concurrency, registry, progress, log)


async def _resume(
    store: RunStore,
    manifest: Manifest,
    retry_errored: bool,
    concurrency: int | None,
    registry: ToolRegistry,
    progress: ProgressSink | None,
    log: Callable[[str], None],
) -> RunResult:
    config = manifest.config
    if concurrency is not None:
        config = config.model_copy(update={"concurrency": concurrency})
    where = str(store.manifest_path)
    # The run's plugins, toolkit modules and Python agents, imported as the run imported them
    # (a --plugin flag is not needed again); a changed one or a changed input file is said.
    warn = lambda text: log(f"warning: {text}")  # noqa: E731
    await asyncio.to_thread(
        restore_user_modules,
        with_agent_modules(manifest.user_modules, (agent.spec for agent in config.agents)),
        where,
        roles=ALL_ROLES,
        warn=warn,
        run_dir=store.root,
    )
    await asyncio.to_thread(check_input_files, manifest.input_files, where, warn)
    config = _recorded_cache(config, manifest, warn)
    pack, _ = _load(pack_source(manifest), registry, config.toolkit_paths)
    branch = None
    if manifest.branch is not None:
        point = BranchPoint.model_validate(manifest.branch)
        source = RunStore(Path(point.source_run))
        branch = Branch(source.read_trajectory(point.episode_id), point)
    orchestrator = Orchestrator(
        config, store, pack, registry=registry, progress=progress, log=log, branch=branch
    )
    return await orchestrator.execute(resume=True, retry_errored=retry_errored)


def _recorded_cache(
    config: RunConfig, manifest: Manifest, warn: Callable[[str], None]
) -> RunConfig:
    """The response cache the run used when none was configured (PROPENSITY_CACHE_DIR may point
    elsewhere now): cached emulator and judge answers stay the ones the run had."""
    if config.cache_dir is not None or manifest.cache_dir is None:
        return config
    current = default_cache_dir().expanduser().absolute()
    recorded = Path(manifest.cache_dir)
    if recorded == current:
        return config
    if recorded.is_dir():
        warn(f"using the run's response cache {recorded} (the default is now {current})")
        return config.model_copy(update={"cache_dir": str(recorded)})
    warn(
        f"the run's response cache {recorded} is gone; using {current}: emulator and judge "
        "answers not cached there are asked for again"
    )
    return config
