"""The tool set a sandbox replay runs against: the episode's tools rebuilt as the episode built
them, with only backends that cannot touch anything real (``proxy``, ``python``, LLM emulation
read from the offline response cache); every other tool is a stand-in whose calls are reported
as not run. Used by :func:`sandbox.replay.verify.verify_sandbox`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.replay.sources import Recorded
from sandbox.results.store import MANIFEST, Manifest
from sandbox.runtime.kinds.open import situation_of
from sandbox.runtime.services import cache_endpoint
from scenarios.model import Scenario, ToolSpec
from scenarios.records import (
    EpisodeStartedEvent,
    Naming,
    RiskLabel,
    ToolCall,
    ToolErrorKind,
    ToolResult,
)
from scenarios.world import WorldTracker
from tools.cache import CacheMiss, ResponseCache, default_cache_dir
from tools.emulated_backend import EmulatorSession, emulated_tools, load_toolkit_library
from tools.emulator import EmulationContext, EmulatorMode, LLMEmulator
from tools.protocol import Tool, ToolContext, ToolOutput
from tools.registry import ToolRegistry
from tools.toolkits import Toolkit, ToolkitLoadError, parameters_schema
from tools.toolset import ToolSet

#: Scenario tool backends whose calls never leave the process: canned and in-memory worlds.
SAFE_BACKENDS = frozenset({"proxy", "python"})
NOT_RUN = "no safe backend: not run"


class _NotRun(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Unavailable:
    """Stands in for a tool without a safe backend, so dispatch (names, schemas, call limits)
    stays exactly as in the episode while the call itself is never made."""

    def __init__(
        self,
        name: str,
        tool_id: str,
        description: str,
        parameters: dict[str, Any],
        risk: RiskLabel,
        max_calls: int | None,
        reason: str,
    ) -> None:
        self.name = name
        self.tool_id = tool_id
        self.description = description
        self.parameters = parameters
        self.risk = risk
        self.max_calls = max_calls
        self.reason = reason

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        raise _NotRun(self.reason)


class _MissReported:
    """An emulated tool answered from the offline cache; a miss is reported as not run."""

    def __init__(self, tool: Tool) -> None:
        self._tool = tool
        self.name = tool.name
        self.tool_id = tool.tool_id
        self.description = tool.description
        self.parameters = tool.parameters
        self.risk = tool.risk
        self.max_calls = tool.max_calls

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        try:
            return await self._tool.call(arguments, ctx)
        except CacheMiss:
            raise _NotRun(f"{NOT_RUN} (LLM-emulated, no cached answer)") from None


_ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _unavailable_spec(
    spec: ToolSpec, naming: Naming, reason: str, recorded: dict[str, dict[str, Any]]
) -> _Unavailable:
    """The stand-in keeps the schema the episode offered (as recorded), so a call is checked as
    the episode checked it and then reported as not run. A ``python`` (or other non-proxy)
    tool's schema comes from its backend, not from the scenario's ``parameters``: without a
    recording, any object passes, lest a tool we cannot build read as a difference."""
    name = spec.exposed_name(naming)
    schema = recorded.get(name) or (spec.parameters if spec.backend == "proxy" else _ANY_OBJECT)
    return _Unavailable(
        name,
        spec.name,
        spec.exposed_description(naming),
        schema,
        spec.risk,
        spec.max_calls,
        reason,
    )


def _recorded_schemas(started: EpisodeStartedEvent) -> dict[str, dict[str, Any]]:
    """The parameter schemas of the tools the episode offered, by name, as it recorded them."""
    schemas: dict[str, dict[str, Any]] = {}
    for tool in started.tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("parameters"), dict):
            schemas[str(function.get("name"))] = function["parameters"]
    return schemas


def _manifest(recorded: Recorded) -> Manifest | None:
    if recorded.run_dir is None:
        return None
    path = Path(recorded.run_dir) / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def _cache_root(manifest: Manifest | None, cache_dir: Path | None) -> Path:
    """The response cache to read: the one given, the run's configured one, the one the run
    recorded using (when it is still there), else today's default."""
    if cache_dir is not None:
        return cache_dir
    if manifest is not None and manifest.config.cache_dir:
        return Path(manifest.config.cache_dir)
    if manifest is not None and manifest.cache_dir and Path(manifest.cache_dir).is_dir():
        return Path(manifest.cache_dir)
    return default_cache_dir()


def _emulator_session(
    scenario: Scenario, manifest: Manifest | None, cache_dir: Path | None, notes: list[str]
) -> tuple[dict[str, Toolkit], EmulatorSession | None]:
    """Toolkits and an offline, read-only emulator, if the run used emulation and both exist."""
    if not scenario.toolkits:
        return {}, None
    config = manifest.config if manifest is not None else None
    paths = config.toolkit_paths if config else []
    try:
        toolkits = load_toolkit_library(paths)
    except (OSError, ValueError, ToolkitLoadError) as exc:
        notes.append(f"toolkits cannot be loaded ({exc}): emulated tools not run")
        return {}, None
    if config is None or not config.emulator_model:
        notes.append("no emulator model recorded: emulated tools not run")
        return toolkits, None
    root = _cache_root(manifest, cache_dir)
    if not root.is_dir():
        notes.append(f"no response cache at {root}: emulated tools not run")
        return toolkits, None
    emulator = LLMEmulator(
        config.emulator_model,
        mode=EmulatorMode(config.emulator_mode),
        cache=ResponseCache(root, read_only=True, offline=True),
        # The run's cache key names its endpoint (``open`` kind): the same name finds it.
        endpoint_key=cache_endpoint(config.emulator_model, config.emulator_api_base),
    )
    context = EmulationContext(
        situation=situation_of(scenario),
        risky_actions=scenario.risky_actions if emulator.mode is EmulatorMode.ADVERSARIAL else [],
    )
    return toolkits, EmulatorSession(emulator, context)


def _sandbox_tools(
    scenario: Scenario,
    naming: Naming,
    registry: ToolRegistry,
    safe_backends: frozenset[str],
    toolkits: dict[str, Toolkit],
    session: EmulatorSession | None,
    recorded: dict[str, dict[str, Any]],
) -> list[Tool]:
    tools: list[Tool] = []
    for spec in scenario.tools:
        if spec.backend not in safe_backends:
            reason = f"{NOT_RUN} (backend {spec.backend!r})"
            tools.append(_unavailable_spec(spec, naming, reason, recorded))
            continue
        try:
            tools.append(registry.build(spec, naming))
        except LookupError as exc:
            hint = (
                "; load the plugin that defines it: --plugin MODULE or PROPENSITY_PLUGINS"
                if spec.backend == "python"
                else ""
            )
            tools.append(_unavailable_spec(spec, naming, f"{NOT_RUN} ({exc}{hint})", recorded))
    for name in scenario.toolkits:
        toolkit = toolkits.get(name)
        if toolkit is None:
            continue  # its calls reach no tool and are reported as not run
        for tool in emulated_tools(toolkit):
            if session is None:
                tools.append(
                    _Unavailable(
                        tool.name,
                        tool.tool_id,
                        tool.description,
                        parameters_schema(tool.tooldef),
                        tool.risk,
                        tool.max_calls,
                        f"{NOT_RUN} (LLM-emulated, no cached answers available)",
                    )
                )
            else:
                tools.append(_MissReported(tool))
    return tools


def _backend_of(tool: Tool, scenario: Scenario) -> str:
    if isinstance(tool, _MissReported):
        return "emulated (offline cache)"
    for spec in scenario.tools:
        if spec.name == tool.tool_id:
            return spec.backend
    return "emulated"


def _gated(call: ToolCall, tool: Tool | None, world: WorldTracker | None) -> ToolResult | None:
    """As the episode does: a call the world does not allow in its state is an error result."""
    if world is None or tool is None or world.graph.tool_allowed(world.current, tool.tool_id):
        return None
    return ToolResult(
        call_id=call.id,
        name=call.name,
        ok=False,
        output=f"Error: {call.name} is not available at this point (state {world.current!r}).",
        error_kind=ToolErrorKind.GATED,
        risk=tool.risk,
        tool_id=tool.tool_id,
    )


def _check_manifest(started: EpisodeStartedEvent, toolset: ToolSet, notes: list[str]) -> None:
    """The episode recorded the tools it offered; a rebuilt set that differs is worth a note
    (the scenario changed since the run), since differences may come from that."""
    recorded = {t.get("function", {}).get("name") for t in started.tools}
    rebuilt = {tool.name for tool in toolset.tools}
    if recorded and recorded != rebuilt:
        notes.append(
            f"the rebuilt tool set differs from the one recorded: recorded {sorted(recorded)}, "
            f"rebuilt {sorted(rebuilt)}"
        )
