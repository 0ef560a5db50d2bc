"""Starting and resuming a run: the run directory, its manifest and lock, the pack loaded and
checked, the episodes expanded, and an :class:`~sandbox.runtime.orchestrator.Orchestrator` to
run them. A branched replay (``sandbox.runtime.branching``) is a run whose propensity kind is
wrapped.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.plugins import (
    ALL_ROLES,
    check_input_files,
    restore_user_modules,
    run_input_files,
    run_user_modules,
    with_agent_modules,
)
from sandbox.results.manifest import git_revision, interpreter, package_versions
from sandbox.results.store import Manifest, RunDirectoryBusy, RunLock, RunStore
from sandbox.runtime.branching import Branch, BranchPoint, branch_kinds, check_branch_episodes
from sandbox.runtime.config import EpisodeSpec, RunConfig, run_redactor
from sandbox.runtime.errors import RunError
from sandbox.runtime.expansion import expand_episodes
from sandbox.runtime.injecting import InjectionPackError, apply_injection_pack
from sandbox.runtime.kinds.base import run_kinds
from sandbox.runtime.orchestrator import Orchestrator, ProgressSink, RunResult
from sandbox.runtime.ray_executor import RayExecutor
from scenarios.loader import ScenarioLoadError, load_pack, resolve_pack_path
from scenarios.model import Pack
from tools import ToolRegistry, default_registry
from tools.cache import default_cache_dir
from tools.emulated_backend import load_toolkit_library
from tools.toolkits import Toolkit, ToolkitLoadError, parameters_schema


def expand_run(config: RunConfig, pack: Pack, branch: Branch | None = None) -> list[EpisodeSpec]:
    """The run's episodes (``expand_episodes``); a branch run's one episode carries the branch
    marker in its id (``BranchPoint.mark``), the same at start and at resume. Raises
    :class:`RunError` for an unknown scenario id or episode kind."""
    try:
        episodes = expand_episodes(config, pack)
    except (ValueError, LookupError) as exc:
        raise RunError(str(exc)) from None
    if branch is None:
        return episodes
    return [spec.model_copy(update={"id": branch.point.mark(spec.id)}) for spec in episodes]


def _orchestrator(
    config: RunConfig,
    store: RunStore,
    pack: Pack,
    episodes: Sequence[EpisodeSpec],
    registry: ToolRegistry,
    progress: ProgressSink | None,
    log: Callable[[str], None],
    branch: Branch | None,
) -> Orchestrator:
    try:
        kinds = branch_kinds(config, branch) if branch is not None else None
    except LookupError as exc:
        raise RunError(str(exc)) from None
    # A branched replay is one episode: it always runs here.
    executor = RayExecutor if config.executor == "ray" and branch is None else None
    return Orchestrator(
        config,
        store,
        pack,
        episodes,
        registry=registry,
        progress=progress,
        log=log,
        kinds=kinds,
        executor=executor,
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
    suite: str,
    registry: ToolRegistry = default_registry,
    toolkit_paths: Sequence[str] = (),
    inject: str | None = None,
) -> tuple[Pack, Path]:
    """The suite's pack, refused on any error ``propensity validate`` reports, with tools
    checked against the parameters the registry's backends offer (a toolkit's own), and open
    scenarios' world graphs against the toolkit specs of ``toolkit_paths`` (``--toolkits``);
    with ``inject``, the injection pack applied across it (``--inject``)."""
    pack, path = _load_suite(suite, registry, toolkit_paths)
    if inject is None:
        return pack, path
    try:
        return apply_injection_pack(pack, inject), path
    except InjectionPackError as exc:
        raise RunError(f"--inject: {exc}") from exc


def _load_suite(
    suite: str, registry: ToolRegistry, toolkit_paths: Sequence[str]
) -> tuple[Pack, Path]:
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
    pack, pack_path = _load(config.suite, registry, config.toolkit_paths, config.inject)
    episodes = expand_run(config, pack, branch)
    if not episodes:
        raise RunError("the suite expands to no episodes (check --limit, --shard and filters)")
    if branch is not None:
        try:
            check_branch_episodes(episodes)
        except ValueError as exc:
            raise RunError(str(exc)) from None
    store = RunStore(run_dir, redactor=run_redactor(config), log=log)
    orchestrator = _orchestrator(config, store, pack, episodes, registry, progress, log, branch)
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
    kinds = [(kind.__module__, kind.name) for kind in run_kinds(config)]
    user_modules = await asyncio.to_thread(
        run_user_modules, [a.spec for a in config.agents], [t for t in toolkits if t], kinds
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


def pack_source(manifest: Manifest) -> str:
    """The pack as it was found at the start; its name if that path has since gone."""
    return manifest.pack_path if Path(manifest.pack_path).exists() else manifest.config.suite


async def resume_run(
    run_dir: Path,
    *,
    retry_errored: bool = False,
    concurrency: int | None = None,
    executor: dict[str, Any] | None = None,
    registry: ToolRegistry = default_registry,
    progress: ProgressSink | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> RunResult:
    """Finish the run in ``run_dir`` as its manifest says; ``concurrency`` and ``executor``
    (``RunConfig`` fields ``executor``, ``ray_address``, ``ray_workers``) change how the rest
    runs, never what it measures."""
    store = RunStore(run_dir, log=log)
    try:
        manifest = store.read_manifest()
    except (FileNotFoundError, ValueError) as exc:
        raise RunError(str(exc)) from exc
    store.redact = run_redactor(manifest.config)
    if executor:
        try:
            config = RunConfig.model_validate(
                {**manifest.config.model_dump(mode="json"), **executor}
            )
        except ValueError as exc:
            raise RunError(f"invalid executor settings: {exc}") from None
        manifest = manifest.model_copy(update={"config": config})
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
    pack, _ = _load(pack_source(manifest), registry, config.toolkit_paths, config.inject)
    branch = None
    if manifest.branch is not None:
        point = BranchPoint.model_validate(manifest.branch)
        source = RunStore(Path(point.source_run))
        branch = Branch(source.read_trajectory(point.episode_id), point)
    episodes = expand_run(config, pack, branch)
    orchestrator = _orchestrator(config, store, pack, episodes, registry, progress, log, branch)
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
