"""The Ray executor: a run's episodes execute on the workers of a Ray cluster (``--executor ray``).

The driver (the `propensity run` process) keeps sole ownership of the run directory: it writes
the journal, the scores and every trajectory, so resume, report, merge and the run-directory
contract are those of a local run. Each worker is a Ray actor that builds the run's kinds and
agents once (its own Docker engine, from its own ``DOCKER_HOST``; its own local model server),
runs the episodes it is handed, ``RunConfig.concurrency`` at once, into a scratch directory of
its own, and sends each episode back whole when it ends: the outcome, the scores, the agent
calls and their usage, the protocol switches and the trajectory's lines. The driver validates
all of it like input read from disk (:class:`WorkerReport`) before writing a line.

What can go wrong between the two is infrastructure, never behaviour: a worker that dies (its
node lost, killed, out of memory) ends its episodes ``errored`` with reason ``worker_lost``; a
report that does not validate, ``harness_error``; a worker that does not answer within twice the
episode time limit (plus two minutes), ``worker_timeout``. ``--resume --retry-errored`` runs them
again. A driver killed mid-run leaves its in-flight episodes ``running`` in the journal, and a
resume runs them again, as after a local kill.

Ray is an optional extra (``scripts/bootstrap.sh --extra ray``); it is imported only here, and
only when the executor starts. See docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from sandbox.plugins import ALL_ROLES, UserModule, restore_user_modules
from sandbox.results.store import RunStore
from sandbox.runtime.config import EpisodeSpec, RunConfig, run_redactor
from sandbox.runtime.errors import RunError
from sandbox.runtime.turn_loop import EpisodeOutcome
from scenarios.model import Pack
from scenarios.records import EpisodeEndedEvent, EpisodeStatus, Event, Score, Usage
from tools import ToolRegistry, default_registry

if TYPE_CHECKING:
    from sandbox.runtime.orchestrator import EpisodeResult, Orchestrator

INSTALL_HINT = (
    "--executor ray needs Ray: install the extra with `scripts/bootstrap.sh --extra ray` "
    "(or `pip install 'propensity-sandbox[ray]'`)"
)
# Environment variables a worker is given from the driver's: the agents' API keys (by the names
# their --api-key-env gives), the harness's own settings and litellm's offline cost map.
_FORWARDED_PREFIXES = ("PROPENSITY_", "LITELLM_")
# How long the workers may take to start (an actor waits while the cluster lacks the CPUs).
WORKER_START_TIMEOUT_S = 300.0
_EVENTS: TypeAdapter[Any] = TypeAdapter(Event)


class WorkerReport(BaseModel):
    """One episode as a worker ran it, sent back to the driver whole. ``trajectory`` holds the
    trajectory's JSON lines as the worker wrote them (judge verdicts included)."""

    episode_id: str
    status: EpisodeStatus
    reason: str
    error: str | None = None
    scores: list[Score] = Field(default_factory=list)
    calls: int = Field(default=0, ge=0)
    usage: Usage | None = None
    switches: list[dict[str, Any]] = Field(default_factory=list)
    trajectory: str
    # Which worker ran it: "node-ip:pid", for a reader chasing a failure.
    worker: str = ""


class WorkerSetup(BaseModel):
    """What a worker needs to build the run as the driver built it."""

    config: RunConfig
    run_name: str
    index: int
    # The run's recorded user modules (plugins, toolkits, Python agents), imported again.
    user_modules: list[dict[str, Any]] = Field(default_factory=list)
    # The driver's working directory and import path: on a local cluster, workers import the
    # user's modules as the driver does.
    cwd: str
    sys_path: list[str] = Field(default_factory=list)


def _follow_driver(setup: WorkerSetup) -> None:
    """Work where the driver works and import what it imports (on a local cluster; a path the
    worker's node lacks is left out)."""
    if Path(setup.cwd).is_dir():
        os.chdir(setup.cwd)
    sys.path.extend(p for p in setup.sys_path if p not in sys.path and Path(p).exists())


# Seconds to wait for a TCP connection to an explicit --ray-address before refusing the run
# (Ray itself retries an unreachable address without end).
CONNECT_TIMEOUT_S = 10.0


# Seconds ray.init may take to start a local cluster, and to connect to a given address;
# PROPENSITY_RAY_CONNECT_TIMEOUT_S sets both.
CLUSTER_START_TIMEOUT_S = 180.0
ADDRESS_TIMEOUT_S = 60.0


def _connect_timeout(address: str | None) -> float:
    given = os.environ.get("PROPENSITY_RAY_CONNECT_TIMEOUT_S")
    if given:
        try:
            value = float(given)
        except ValueError:
            value = 0.0
        if value <= 0:
            raise RunError(f"PROPENSITY_RAY_CONNECT_TIMEOUT_S={given!r}: expected seconds > 0")
        return value
    return CLUSTER_START_TIMEOUT_S if address in (None, "local") else ADDRESS_TIMEOUT_S


class _DropNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _init_within(ray: Any, kwargs: dict[str, Any], timeout_s: float) -> None:
    """``ray.init(**kwargs)`` in a thread of its own, given ``timeout_s``: something that
    accepts connections but is no Ray cluster (a web server on that port) has Ray retry
    without end. Raises what ``ray.init`` raised, or :class:`RunError` when it did not answer
    in time (its thread is left behind, a daemon: the run stops there). Ray sets no signal
    handler from that thread, so the run keeps its own."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            ray.init(**kwargs)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)
        else:
            outcome.append(None)

    logging.getLogger("ray._private.worker").addFilter(_DropNotice())
    thread = threading.Thread(target=target, name="ray-init", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        where = kwargs.get("address") or os.environ.get("RAY_ADDRESS") or "a local cluster"
        raise RunError(
            f"no Ray cluster answered at {where} within {timeout_s:g} s (is it a Ray head "
            "node's GCS port, usually 6379? `ray status` on that node shows it)"
        )
    if outcome[0] is not None:
        raise outcome[0]


def _check_reachable(address: str) -> None:
    """Refuse an explicit ``HOST:PORT`` Ray address nothing answers on (raises
    :class:`RunError` naming it); ``auto``, ``local`` and ``ray://`` client addresses are left to
    Ray."""
    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise RunError(f"--ray-address {address!r}: expected HOST:PORT, auto or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RunError(
            f"cannot connect to Ray at {address}: {exc.strerror or exc} (is a cluster running "
            "there? `ray start --head` starts one; `ray status` shows it)"
        ) from None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RunError(INSTALL_HINT) from None
    return ray


def accept_report(spec: EpisodeSpec, raw: object) -> tuple[WorkerReport, list[Any]]:
    """A worker's report on ``spec``, validated like input read from disk: a
    :class:`WorkerReport` of this episode whose trajectory lines are events ending as the
    episode ended. Returns the report and the events; raises ``ValueError`` (a pydantic
    ``ValidationError`` is one) naming what is wrong."""
    report = WorkerReport.model_validate(raw)
    if report.episode_id != spec.id:
        raise ValueError(f"a report of episode {report.episode_id!r} for {spec.id!r}")
    events = []
    for number, line in enumerate(report.trajectory.splitlines(), 1):
        if line.strip():
            try:
                events.append(_EVENTS.validate_json(line))
            except ValidationError as exc:
                raise ValueError(f"trajectory line {number}: {exc}") from None
    ends = [event for event in events if isinstance(event, EpisodeEndedEvent)]
    if not ends or ends[-1].status is not report.status:
        raise ValueError(f"its trajectory does not end {report.status.value}, as the episode did")
    if report.status is not EpisodeStatus.DONE and report.scores:
        raise ValueError(f"scores for an episode that ended {report.status.value}")
    if any(score.episode_id != spec.id for score in report.scores):
        raise ValueError("a score of another episode")
    return report, events


class EpisodeWorker:
    """A Ray actor running episodes (wrapped with ``ray.remote`` when the executor starts).

    It builds its orchestrator on its first call, so a worker Ray restarts after a crash builds
    itself again."""

    def __init__(self, setup: dict[str, Any], pack: Pack, registry: ToolRegistry | None) -> None:
        self.setup = WorkerSetup.model_validate(setup)
        self.pack = pack
        self.registry = registry or default_registry
        self.orchestrator: Orchestrator | None = None
        self.scratch: Path | None = None
        self._lock = asyncio.Lock()
        self.name = f"{os.uname().nodename}:{os.getpid()}"

    async def start(self, todo: list[dict[str, Any]]) -> str:
        """Build the run and start its kinds and agents for ``todo``; returns the worker's name.
        Raises what the run raises (a :class:`RunError` for a kind that cannot start)."""
        async with self._lock:
            if self.orchestrator is None:
                await self._build([EpisodeSpec.model_validate(s) for s in todo])
        return self.name

    async def _build(self, todo: list[EpisodeSpec]) -> None:
        from sandbox.runtime.orchestrator import Orchestrator

        setup = self.setup
        await asyncio.to_thread(_follow_driver, setup)
        if setup.user_modules:
            await asyncio.to_thread(
                restore_user_modules,
                [UserModule.model_validate(m) for m in setup.user_modules],
                f"ray worker {self.name}",
                roles=ALL_ROLES,
            )
        # A scratch run directory named after the run and the worker: the containers of a code
        # task carry this name, so two workers sharing one engine never touch each other's.
        self.scratch = Path(tempfile.mkdtemp(prefix="propensity-ray-"))
        store = RunStore(
            self.scratch / f"{setup.run_name}.w{setup.index}",
            redactor=run_redactor(setup.config),
        )
        store.init()
        orchestrator = Orchestrator(setup.config, store, self.pack, todo, registry=self.registry)
        orchestrator.prepare()
        await orchestrator.start_kinds(todo)
        await orchestrator.start_agents()
        self.orchestrator = orchestrator

    async def run(self, spec_data: dict[str, Any]) -> dict[str, Any]:
        """Run one episode; its :class:`WorkerReport` as JSON-ready data."""
        spec = EpisodeSpec.model_validate(spec_data)
        if self.orchestrator is None:  # restarted by Ray after a crash
            await self.start([spec_data])
        assert self.orchestrator is not None
        result = await self.orchestrator.execute_episode(spec)
        path = self.orchestrator.store.trajectory_path(spec.id)
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        await asyncio.to_thread(path.unlink)
        return WorkerReport(
            episode_id=spec.id,
            status=result.outcome.status,
            reason=result.outcome.reason,
            error=result.outcome.error,
            scores=result.scores,
            calls=result.calls,
            usage=result.usage,
            switches=result.switches,
            trajectory=text,
            worker=self.name,
        ).model_dump(mode="json")

    async def close(self) -> None:
        """Close the agents and kinds (containers removed, model servers stopped)."""
        if self.orchestrator is not None:
            try:
                await self.orchestrator.close_agents()
            finally:
                await self.orchestrator.close_kinds()
                self.orchestrator.store.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


class RayExecutor:
    """Runs the orchestrator's episodes on Ray workers (see the module's docstring)."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.config: RunConfig = orchestrator.config
        self.slots = self.config.concurrency
        self.workers: list[Any] = []
        self.names: list[str] = []
        self._inflight: list[int] = []
        self._ray: Any = None
        self._started_cluster = False
        self._remote: Any = None
        self._args: tuple[dict[str, Any], Any, ToolRegistry | None] = ({}, None, None)
        self._generation = 0

    # -- start -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Import Ray and connect to the cluster before the run directory is made, so that a
        missing extra or an unreachable cluster refuses the run without leaving anything."""
        if self._ray is None:
            ray = _import_ray()
            self._connect(ray)
            self._ray = ray

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        self.prepare()
        ray = self._ray
        if not todo:
            return
        count = self.config.ray_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        cpus = float(ray.cluster_resources().get("CPU", 1))
        registry = self.orchestrator.context.registry
        self._remote = ray.remote(EpisodeWorker).options(
            # One CPU each while the cluster has them; a share of them beyond that.
            num_cpus=min(1.0, cpus / count),
            max_concurrency=self.config.concurrency + 2,
            # A lost worker is replaced by the executor (its episode recorded worker_lost), not
            # restarted by Ray behind our back.
            max_restarts=0,
            scheduling_strategy="SPREAD",
            runtime_env={"env_vars": self._forwarded_env()},
        )
        self._args = (
            self._setup(),
            ray.put(self.orchestrator.pack),
            None if registry is default_registry else registry,
        )
        self.workers = [self._new_worker(index) for index in range(count)]
        data = [spec.model_dump(mode="json") for spec in todo]
        self.orchestrator.log(
            f"Ray: starting {count} worker(s) of {self.config.concurrency} episode(s) each"
        )
        try:
            async with asyncio.timeout(WORKER_START_TIMEOUT_S):
                self.names = list(
                    await asyncio.gather(*(worker.start.remote(data) for worker in self.workers))
                )
        except TimeoutError:
            raise RunError(
                f"the {count} Ray worker(s) did not start within {WORKER_START_TIMEOUT_S:g} s "
                f"(the cluster has {cpus:g} CPU(s); lower --ray-workers or add nodes)"
            ) from None
        except Exception as exc:
            raise RunError(f"a Ray worker could not start: {_cause(exc)}") from None
        self.slots = count * self.config.concurrency
        self._inflight = [0] * count
        hosts = sorted({name.rpartition(":")[0] for name in self.names})
        self.orchestrator.log(f"Ray: {count} worker(s) on {len(hosts)} node(s): {', '.join(hosts)}")

    def _new_worker(self, index: int) -> Any:
        setup, pack, registry = self._args
        return self._remote.remote({**setup, "index": index}, pack, registry)

    def _replace(self, index: int, worker: Any) -> None:
        """Put a fresh worker where ``worker`` was lost (once, whoever notices first); it builds
        the run again on its first episode."""
        if self.workers[index] is worker:
            self._generation += 1
            self.workers[index] = self._new_worker(index + len(self.workers) * self._generation)
            self.orchestrator.log(f"Ray: worker {index} was lost; a new one takes its place")

    def _connect(self, ray: Any) -> None:
        address = self.config.ray_address
        if ray.is_initialized():
            return
        self._started_cluster = address == "local" or (
            address is None and not os.environ.get("RAY_ADDRESS")
        )
        kwargs: dict[str, Any] = {
            "address": address,
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": "warning",
            "namespace": "propensity",
        }
        if address is not None:
            _check_reachable(address)
        # Ray installs its own SIGTERM handler (and a C++ crash dump on it); the run's own
        # handler (stop like Ctrl-C, resumable) is put back.
        handler = signal.getsignal(signal.SIGTERM)
        # "Token authentication is enabled for this Ray cluster": the safe default, said on
        # every run; docs/scaling.md says it instead.
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR
        )
        try:
            _init_within(ray, kwargs, _connect_timeout(address))
        except RunError:
            raise
        except Exception as exc:  # a wrong address, a cluster of another Ray version
            where = address or os.environ.get("RAY_ADDRESS") or "a local cluster"
            hint = ""
            if (address or os.environ.get("RAY_ADDRESS")) not in (None, "auto") and not (
                os.environ.get("RAY_AUTH_MODE")
            ):
                hint = (
                    " (a cluster started with `ray start` uses token authentication, which Ray "
                    "turns on for an explicit address only with RAY_AUTH_MODE=token; the token "
                    "is read from RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                )
            raise RunError(f"cannot connect to Ray ({where}): {_cause(exc)}{hint}") from None
        finally:
            if threading.current_thread() is threading.main_thread() and handler is not None:
                signal.signal(signal.SIGTERM, handler)

    def _setup(self) -> dict[str, Any]:
        store = self.orchestrator.store
        try:
            modules = [m.model_dump(mode="json") for m in store.read_manifest().user_modules]
        except (FileNotFoundError, ValueError):
            modules = []
        return WorkerSetup(
            config=self.config,
            run_name=store.root.name,
            index=0,
            user_modules=modules,
            cwd=os.getcwd(),
            sys_path=[p for p in sys.path if p],
        ).model_dump(mode="json")

    def _forwarded_env(self) -> dict[str, str]:
        names = {agent.api_key_env for agent in self.config.agents if agent.api_key_env}
        return {
            name: value
            for name, value in os.environ.items()
            if name in names or name.startswith(_FORWARDED_PREFIXES)
        }

    # -- one episode -------------------------------------------------------------------------
    async def run(self, spec: EpisodeSpec) -> EpisodeResult:
        # The least busy worker: each runs at most --concurrency episodes at once.
        index = min(range(len(self.workers)), key=self._inflight.__getitem__)
        self._inflight[index] += 1
        try:
            return await self._run_on(index, spec)
        finally:
            self._inflight[index] -= 1

    async def _run_on(self, index: int, spec: EpisodeSpec) -> EpisodeResult:
        from sandbox.runtime.orchestrator import EpisodeResult

        worker = self.workers[index]
        limit = 2 * self.config.episode_timeout_s + 120
        ref = worker.run.remote(spec.model_dump(mode="json"))
        try:
            async with asyncio.timeout(limit):
                raw = await ref
        except TimeoutError:
            self._cancel(ref)
            return self._lost(spec, "worker_timeout", f"no answer from the worker in {limit:g} s")
        except asyncio.CancelledError:
            self._cancel(ref)
            raise
        except Exception as exc:
            if isinstance(exc, self._ray.exceptions.RayTaskError):
                return self._lost(spec, "harness_error", f"the worker failed: {_cause(exc)}")
            self._replace(index, worker)
            return self._lost(spec, "worker_lost", f"the Ray worker was lost: {_cause(exc)}")
        try:
            report, events = accept_report(spec, raw)
        except ValueError as exc:
            return self._lost(spec, "harness_error", f"invalid report from the worker: {exc}")
        for _ in range(report.calls):  # the progress display counts agent calls
            self.orchestrator.agent_call(spec)
        writer = self.orchestrator.store.open_trajectory(spec.id)
        try:
            for event in events:
                writer.write(event)
        finally:
            writer.close()
        outcome = EpisodeOutcome(report.status, report.reason, report.error)
        return EpisodeResult(
            outcome,
            report.scores,
            report.calls,
            report.usage,
            [dict(s) for s in report.switches],
        )

    def _cancel(self, ref: Any) -> None:
        """Cancel an episode on its worker (its asyncio task there), if it still runs."""
        try:
            self._ray.cancel(ref)
        except Exception:  # finished, or its worker is gone
            pass

    def _lost(self, spec: EpisodeSpec, reason: str, message: str) -> EpisodeResult:
        """The episode ended errored by the executor itself (infrastructure), its trajectory
        the error and the end."""
        from sandbox.runtime.orchestrator import EpisodeResult

        writer = self.orchestrator.store.open_trajectory(spec.id)
        try:
            outcome = self.orchestrator.crash(writer, reason, message)
        finally:
            writer.close()
        return EpisodeResult(outcome)

    # -- close -------------------------------------------------------------------------------
    async def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        started = time.monotonic()
        closing = [worker.close.remote() for worker in self.workers]
        if closing:
            try:
                async with asyncio.timeout(120):
                    await asyncio.gather(*closing, return_exceptions=True)
            except TimeoutError:
                self.orchestrator.log(
                    f"warning: Ray workers did not close within "
                    f"{time.monotonic() - started:.0f} s; killing them"
                )
        for worker in self.workers:
            try:
                ray.kill(worker)
            except Exception:  # already gone
                pass
        self.workers = []
        if self._started_cluster:
            await asyncio.to_thread(ray.shutdown)


def _cause(exc: BaseException) -> str:
    """What a Ray error says, shortly (its cause's, for a task error): at most 500 characters."""
    cause = getattr(exc, "cause", None)
    text = f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException) else str(exc)
    return (text.strip() or type(exc).__name__)[:500]
