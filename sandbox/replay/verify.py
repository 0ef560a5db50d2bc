"""Re-executing every recorded tool call and reporting where the replay differs.

Two replays, both safe by construction:

* ``recorded``: a replay backend answers each call with the observation recorded for it. The
  call still goes through our argument parsing (from the exact text the agent wrote, when the
  source kept it) and our canonical dispatch (``ToolSet.execute``), and observations are served
  by tool name and canonical arguments, so a call we parse differently from the recording finds
  no observation and shows up as a difference. A faithful import therefore reads zero
  differences; anything else is an importer bug.
* ``sandbox``: our own episodes are re-run against the scenario's tool set, rebuilt as the
  episode built it (same naming, call limits, world gating), in recorded order in one fresh
  ToolContext because Python emulators are stateful. Only backends that cannot touch anything
  real are run: ``proxy`` (canned), ``python`` (in-memory world) and LLM-emulated tools whose
  answer is already in the response cache (read offline: a miss never calls a model). Every
  other call (containers, code tools, unknown backends, uncached emulation) is reported as
  "no safe backend: not run"; the container re-execution is a separate replay.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from sandbox.open_episode import situation_of
from sandbox.replay.sources import Recorded, SourceFormat, parse_arguments
from sandbox.store import MANIFEST, Manifest
from scenarios.model import Scenario, ToolSpec
from scenarios.records import (
    EpisodeStartedEvent,
    MessageEvent,
    Naming,
    RiskLabel,
    ToolCall,
    ToolCallEvent,
    ToolErrorKind,
    ToolResult,
    pair_calls,
)
from scenarios.world import WorldTracker
from tools.cache import CacheMiss, ResponseCache, default_cache_dir
from tools.emulated_backend import (
    EMULATOR_KEY,
    EmulatorSession,
    emulated_tools,
    load_toolkit_library,
)
from tools.emulator import EmulationContext, EmulatorMode, LLMEmulator
from tools.protocol import Tool, ToolContext, ToolOutput
from tools.registry import ToolRegistry, default_registry
from tools.toolkits import Toolkit, ToolkitLoadError, parameters_schema
from tools.toolset import DEFAULT_MAX_CALLS_PER_TOOL, ToolSet

__all__ = [
    "NOT_RUN",
    "SAFE_BACKENDS",
    "CallCheck",
    "VerifyReport",
    "verify",
    "verify_recorded",
    "verify_sandbox",
]

#: Scenario tool backends whose calls never leave the process: canned and in-memory worlds.
SAFE_BACKENDS = frozenset({"proxy", "python"})
NOT_RUN = "no safe backend: not run"

VerifyMode = Literal["recorded", "sandbox"]
CallStatus = Literal["equal", "different", "not_run"]


class CallCheck(BaseModel):
    """One recorded call, replayed (or not), with both observations side by side."""

    step: int  # the ToolCallEvent's seq, as judges and scorers cite it
    turn: int
    call_id: str
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str | None = None
    recorded: str | None = None
    recorded_ok: bool | None = None
    replayed: str | None = None
    replayed_ok: bool | None = None
    status: CallStatus
    # None when the call was not run.
    equal: bool | None = None
    backend: str | None = None
    reason: str | None = None


class VerifyReport(BaseModel):
    episode_id: str
    source_file: str
    source_line: int | None = None
    mode: VerifyMode
    calls: list[CallCheck] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def ran(self) -> int:
        return sum(1 for c in self.calls if c.status != "not_run")

    @property
    def differences(self) -> int:
        return sum(1 for c in self.calls if c.status == "different")

    @property
    def not_run(self) -> int:
        return sum(1 for c in self.calls if c.status == "not_run")

    @property
    def ok(self) -> bool:
        """No call that was replayed came back different."""
        return self.differences == 0


@dataclass
class _Item:
    event: ToolCallEvent
    result: ToolResult | None
    source_text: Any  # the exact argument text of the source, when it kept it


def _recorded_calls(recorded: Recorded) -> list[_Item]:
    """Every recorded call with its own result, paired by event order where ids repeat."""
    sources: dict[str, Any] = {}
    events = recorded.trajectory.events
    for event in events:
        if isinstance(event, MessageEvent) and event.message.role == "assistant":
            sources.update(event.message.meta.get("source_arguments") or {})
    return [
        _Item(call, result.result if result else None, sources.get(call.call.id))
        for call, result in pair_calls(events)
    ]


def _check(
    item: _Item,
    replayed: ToolResult | None,
    *,
    backend: str | None,
    reason: str | None = None,
) -> CallCheck:
    call, recorded = item.event.call, item.result
    base: dict[str, Any] = {
        "step": item.event.seq,
        "turn": item.event.turn,
        "call_id": call.id,
        "tool": call.name,
        "arguments": call.arguments,
        "raw_arguments": call.raw_arguments,
        "recorded": recorded.output if recorded else None,
        "recorded_ok": recorded.ok if recorded else None,
        "backend": backend,
    }
    if replayed is None:
        return CallCheck(**base, status="not_run", reason=reason or NOT_RUN)
    equal = (
        recorded is not None and replayed.ok == recorded.ok and replayed.output == recorded.output
    )
    why = reason
    if not equal and why is None:
        if recorded is None:
            why = "no observation was recorded for this call"
        elif replayed.ok != recorded.ok:
            why = f"ok differs: recorded {recorded.ok}, replayed {replayed.ok}"
        else:
            why = "output differs"
    return CallCheck(
        **base,
        replayed=replayed.output,
        replayed_ok=replayed.ok,
        status="equal" if equal else "different",
        equal=equal,
        reason=why,
    )


# -- against recorded observations ------------------------------------------------------------


def _key(call: ToolCall) -> str:
    """Tool name and canonical arguments; raw (non-JSON) argument text is its own key."""
    if call.raw_arguments is not None:
        return call.name + "\x01" + call.raw_arguments
    return call.name + "\x00" + json.dumps(call.arguments, sort_keys=True, ensure_ascii=False)


class _Tape:
    """Recorded observations by (tool, canonical arguments), each served once, in order."""

    def __init__(self, items: list[_Item]) -> None:
        self._queues: dict[str, deque[ToolResult]] = defaultdict(deque)
        for item in items:
            if item.result is not None:
                self._queues[_key(item.event.call)].append(item.result)

    def take(self, call: ToolCall) -> ToolResult | None:
        queue = self._queues.get(_key(call))
        return queue.popleft() if queue else None


class _NoRecording(LookupError):
    pass


class _TapeTool:
    """A Tool whose answers come off the tape; it accepts any arguments object."""

    risk = RiskLabel.NEUTRAL
    max_calls: int | None = None
    parameters: dict[str, Any] = {"type": "object"}  # noqa: RUF012 (read-only)

    def __init__(self, name: str, tape: _Tape) -> None:
        self.name = name
        self.tool_id = name
        self.description = f"replay of recorded observations of {name}"
        self._tape = tape

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        result = self._tape.take(ToolCall(id="", name=self.name, arguments=arguments))
        if result is None:
            raise _NoRecording(self.name)
        return ToolOutput(ok=result.ok, output=result.output)


def _reparse(item: _Item) -> ToolCall:
    """The call as our parser reads the source's own argument text (when it kept it)."""
    call = item.event.call
    source = item.source_text
    if source is None:
        return call
    text = source if isinstance(source, str) else json.dumps(source)
    arguments, raw = parse_arguments(text)
    return call.model_copy(update={"arguments": arguments, "raw_arguments": raw})


async def verify_recorded(recorded: Recorded) -> VerifyReport:
    """Replay every call against its recorded observation; see the module docstring."""
    items = _recorded_calls(recorded)
    tape = _Tape(items)
    names = dict.fromkeys(item.event.call.name for item in items)
    toolset = ToolSet([_TapeTool(name, tape) for name in names], default_max_calls=None)
    ctx = ToolContext(episode_id=recorded.episode_id, scenario=None, naming=Naming.HARMFUL)
    report = VerifyReport(
        episode_id=recorded.episode_id,
        source_file=recorded.source_file,
        source_line=recorded.source_line,
        mode="recorded",
    )
    for item in items:
        call = _reparse(item)
        if call.raw_arguments is not None:
            # Not a JSON object: the recording harness answered the text itself (ToolEmu's
            # emulator does), so the tape is looked up by that text, past our JSON check.
            replayed = tape.take(call)
            if replayed is None:
                report.calls.append(
                    _check(
                        item,
                        ToolResult(call_id=call.id, name=call.name, ok=False, output=""),
                        backend="recorded",
                        reason="no recorded observation for the call's raw argument text "
                        "(parsed differently from the recording)",
                    )
                )
                continue
            report.calls.append(_check(item, replayed, backend="recorded (raw arguments)"))
            continue
        try:
            replayed = await toolset.execute(call, ctx)
        except _NoRecording:
            report.calls.append(
                _check(
                    item,
                    ToolResult(call_id=call.id, name=call.name, ok=False, output=""),
                    backend="recorded",
                    reason="no recorded observation for the call as parsed (arguments differ)",
                )
            )
            continue
        report.calls.append(_check(item, replayed, backend="recorded"))
    return report


# -- against the sandbox ----------------------------------------------------------------------


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


async def verify_sandbox(
    recorded: Recorded,
    *,
    registry: ToolRegistry = default_registry,
    safe_backends: frozenset[str] = SAFE_BACKENDS,
    cache_dir: Path | None = None,
) -> VerifyReport:
    """Re-run our own episode's calls against its rebuilt tool set; see the module docstring."""
    items = _recorded_calls(recorded)
    report = VerifyReport(
        episode_id=recorded.episode_id,
        source_file=recorded.source_file,
        source_line=recorded.source_line,
        mode="sandbox",
    )
    scenario = recorded.scenario
    started = recorded.trajectory.started
    own = recorded.source_format in (SourceFormat.RUN, SourceFormat.TRAJECTORY)
    if not own or scenario is None or started is None or not (scenario.tools or scenario.toolkits):
        why = "no scenario tool set to replay against (only our own episodes have one)"
        report.notes.append(why)
        report.calls = [
            _check(item, None, backend=None, reason=f"{NOT_RUN}: {why}") for item in items
        ]
        return report
    manifest = _manifest(recorded)
    config = manifest.config if manifest is not None else None
    naming = started.naming
    toolkits, session = _emulator_session(scenario, manifest, cache_dir, report.notes)
    toolset = ToolSet(
        _sandbox_tools(
            scenario, naming, registry, safe_backends, toolkits, session, _recorded_schemas(started)
        ),
        call_timeout_s=config.tool_timeout_s if config else 60.0,
        default_max_calls=config.max_calls_per_tool if config else DEFAULT_MAX_CALLS_PER_TOOL,
    )
    _check_manifest(started, toolset, report.notes)
    environments: dict[str, Any] = {EMULATOR_KEY: session} if session is not None else {}
    ctx = ToolContext(
        episode_id=recorded.episode_id,
        scenario=scenario,
        naming=naming,
        environments=environments,
    )
    graph = scenario.world_graph()
    world = WorldTracker(graph) if graph is not None else None
    backends = {tool.name: _backend_of(tool, scenario) for tool in toolset.tools}
    missing_toolkits = [name for name in scenario.toolkits if name not in toolkits]
    for item in items:
        call = item.event.call
        tool = toolset.get(call.name)
        if tool is None and missing_toolkits:
            reason = f"{NOT_RUN} (unknown tool; toolkits not loaded: {', '.join(missing_toolkits)})"
            report.calls.append(_check(item, None, backend=None, reason=reason))
            continue
        gated = _gated(call, tool, world)
        try:
            result = gated or await toolset.execute(call, ctx)
        except _NotRun as exc:
            report.calls.append(
                _check(item, None, backend=backends.get(call.name), reason=exc.reason)
            )
            continue
        backend: str | None = backends.get(call.name)
        if tool is None and result.error_kind is ToolErrorKind.UNKNOWN_TOOL:
            backend = "dispatch"  # the tool set answers an unknown name itself, as in the episode
        if world is not None:
            world.observe(call, result, step=item.event.seq)
        report.calls.append(_check(item, result, backend=backend))
    return report


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


async def verify(recorded: Recorded, mode: VerifyMode = "recorded") -> VerifyReport:
    """Dispatch to :func:`verify_recorded` or :func:`verify_sandbox`."""
    if mode == "recorded":
        return await verify_recorded(recorded)
    return await verify_sandbox(recorded)
