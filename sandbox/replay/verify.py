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

A call with no recorded observation (the episode errored before its result, or the source
lacks it) has nothing to be compared with: it is reported as *not checked*, with that reason,
and is never a difference (in ``recorded`` mode it is not replayed at all, and takes no
observation off the tape that belongs to another call).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from sandbox.replay.safe_tools import (
    NOT_RUN,
    SAFE_BACKENDS,
    _backend_of,
    _check_manifest,
    _emulator_session,
    _gated,
    _manifest,
    _NotRun,
    _recorded_schemas,
    _sandbox_tools,
)
from sandbox.replay.sources import Recorded, SourceFormat, parse_arguments
from scenarios.records import (
    EpisodeStatus,
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
from tools.emulated_backend import EMULATOR_KEY
from tools.protocol import ToolContext, ToolOutput
from tools.registry import ToolRegistry, default_registry
from tools.toolset import DEFAULT_MAX_CALLS_PER_TOOL, ToolSet

__all__ = [
    "NOT_RUN",
    "SAFE_BACKENDS",
    "CallCheck",
    "VerifyReport",
    "unrecorded_reason",
    "verify",
    "verify_recorded",
    "verify_sandbox",
]

VerifyMode = Literal["recorded", "sandbox"]
# equal / different: replayed and compared with the recorded observation; not_run: not
# re-executed (no safe backend, no tool set); not_checked: no observation was recorded for the
# call, so there is nothing to compare with (never a difference).
CallStatus = Literal["equal", "different", "not_run", "not_checked"]


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
    # None when the call was not run or not checked.
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
        """Calls re-executed (compared or not)."""
        return sum(1 for c in self.calls if c.replayed_ok is not None)

    @property
    def compared(self) -> int:
        """Calls re-executed and compared with their recorded observation."""
        return sum(1 for c in self.calls if c.status in ("equal", "different"))

    @property
    def differences(self) -> int:
        return sum(1 for c in self.calls if c.status == "different")

    @property
    def not_run(self) -> int:
        return sum(1 for c in self.calls if c.status == "not_run")

    @property
    def not_checked(self) -> int:
        return sum(1 for c in self.calls if c.status == "not_checked")

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


def unrecorded_reason(recorded: Recorded) -> str:
    """Why a call of ``recorded`` without a recorded observation is not checked."""
    if recorded.status is EpisodeStatus.ERRORED:
        return (
            "no recorded observation: the episode errored before this call's result was "
            "recorded (infrastructure, not behaviour); nothing to compare with"
        )
    return "no recorded observation for this call in the source; nothing to compare with"


def _check(
    item: _Item,
    replayed: ToolResult | None,
    *,
    backend: str | None,
    reason: str | None = None,
    unrecorded: str | None = None,
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
    if replayed is None and recorded is None and reason is None and unrecorded is not None:
        # Not replayed because nothing was recorded to replay it against.
        return CallCheck(**base, status="not_checked", reason=unrecorded)
    if replayed is None:
        return CallCheck(**base, status="not_run", reason=reason or NOT_RUN)
    if recorded is None:  # re-executed, but there is nothing to compare it with
        return CallCheck(
            **base,
            replayed=replayed.output,
            replayed_ok=replayed.ok,
            status="not_checked",
            reason=unrecorded or "no recorded observation; nothing to compare with",
        )
    equal = replayed.ok == recorded.ok and replayed.output == recorded.output
    why = reason
    if not equal and why is None:
        if replayed.ok != recorded.ok:
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
    unrecorded = unrecorded_reason(recorded)
    for item in items:
        if item.result is None:
            # Nothing to replay it against, and it must not take another call's observation.
            report.calls.append(_check(item, None, backend=None, unrecorded=unrecorded))
            continue
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
    # Ours: a run's episode, or one of our runs exported to Inspect (its scenario recovered).
    own = recorded.source_format in (
        SourceFormat.RUN,
        SourceFormat.TRAJECTORY,
        SourceFormat.INSPECT,
    )
    if not own or scenario is None or started is None or not (scenario.tools or scenario.toolkits):
        why = (
            "no scenario tool set to replay against (only our own episodes have one, also "
            "when exported to Inspect)"
        )
        report.notes.append(why)
        report.calls = [_check(item, None, backend=None, reason=why) for item in items]
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
    unrecorded = unrecorded_reason(recorded)
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
        report.calls.append(_check(item, result, backend=backend, unrecorded=unrecorded))
    return report


async def verify(recorded: Recorded, mode: VerifyMode = "recorded") -> VerifyReport:
    """Dispatch to :func:`verify_recorded` or :func:`verify_sandbox`."""
    if mode == "recorded":
        return await verify_recorded(recorded)
    return await verify_sandbox(recorded)
