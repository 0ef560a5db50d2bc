"""The shared data records that cross every layer boundary.

This module deliberately imports nothing from the project, so scenarios, tools, evaluators and
the runtime can all speak the same types without creating import cycles. Every record is a
pydantic model: trajectories, scores and journals are written with these models and read back
with them, which makes the run directory a stable, validated contract.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    """Base for on-disk records: unknown fields are kept so newer files still load."""

    model_config = ConfigDict(extra="allow", frozen=False)


class RiskLabel(StrEnum):
    ALIGNED = "aligned"
    MISALIGNED = "misaligned"
    NEUTRAL = "neutral"


class Naming(StrEnum):
    """How a misaligned tool is presented to the agent."""

    HARMFUL = "harmful"
    BENIGN = "benign"


class ToolCall(Record):
    """One tool call. ``id`` is the harness's own, unique within the episode (``t3c1``: turn 3,
    first call); ``provider_id`` is the id the provider gave the call, kept only to send the
    conversation back to that provider exactly as it was."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    # The provider's raw argument text when it could not be parsed as a JSON object; the tool
    # layer answers such calls with a corrective error instead of guessing.
    raw_arguments: str | None = None
    provider_id: str | None = None
    # The argument text exactly as the model wrote it (native calls), sent back verbatim.
    arguments_text: str | None = None
    # Set when the call was read from the reply's text rather than returned as a native call:
    # the format it was written in (see ``sandbox.agents.call_reader.CallFormat``).
    recovered_from: str | None = None


class UnparsedCall(Record):
    """Call-shaped text naming a tool that could not be read as a call: never a silent "no
    call". The agent is told, the turn records it, and the episode's scores are flagged."""

    format: str
    names: list[str] = Field(default_factory=list)
    excerpt: str = ""
    reason: str = ""


class Message(Record):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    # Harness-side annotations (pressure category and level, origin); never sent to a model.
    meta: dict[str, Any] = Field(default_factory=dict)


class ToolErrorKind(StrEnum):
    UNKNOWN_TOOL = "unknown_tool"
    BAD_ARGUMENTS = "bad_arguments"
    CALL_LIMIT = "call_limit"
    TOOL_ERROR = "tool_error"
    TIMEOUT = "timeout"
    # The scenario's world graph does not offer the tool in the current state.
    GATED = "gated"


class ToolResult(Record):
    call_id: str
    name: str
    ok: bool
    output: str
    error_kind: ToolErrorKind | None = None
    # The scenario's risk label of the tool that answered, None when no tool matched the call.
    risk: RiskLabel | None = None
    # The tool's canonical (scenario) name, identical across naming variants.
    tool_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None

    def add(self, other: Usage) -> None:
        """Accumulate; the total cost stays unknown (None) once any part of it is unknown."""
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        if self.cost_usd is not None and other.cost_usd is not None:
            self.cost_usd += other.cost_usd
        else:
            self.cost_usd = None


class EpisodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    ERRORED = "errored"


def _now() -> float:
    return time.time()


class _Event(Record):
    t: float = Field(default_factory=_now)
    seq: int = 0
    turn: int = 0


class EpisodeStartedEvent(_Event):
    type: Literal["episode_started"] = "episode_started"
    episode_id: str
    scenario_id: str
    domain: str
    agent: str
    category: str
    naming: Naming
    repeat: int = 0
    seed: int = 0
    tools: list[dict[str, Any]] = Field(default_factory=list)
    # The episode's kind (``EpisodeKind.name``: "scenario", "open", "code_task" or a plugin
    # kind's); None in trajectories recorded before kinds were written.
    kind: str | None = None
    # Set on a branched replay: which recorded episode it continues, from which step.
    branched_from: dict[str, Any] | None = None
    # An attacked episode's attack (``sandbox.runtime.injecting.attack_record``): id, template,
    # the planted text, where it goes and its goal; None for an un-attacked episode.
    injection: dict[str, Any] | None = None


class MessageEvent(_Event):
    type: Literal["message"] = "message"
    message: Message


class AgentTurnEvent(_Event):
    """One agent response, with its accounting; the message itself follows as a MessageEvent."""

    type: Literal["agent_turn"] = "agent_turn"
    model: str | None = None
    latency_s: float = 0.0
    attempts: int = 1
    usage: Usage | None = None
    protocol: str = "native"
    # How this turn's calls were obtained: returned natively by the provider, or recovered from
    # the reply's text (by format); call-shaped text that could not be read is listed.
    native_calls: int = 0
    recovered_calls: dict[str, int] = Field(default_factory=dict)
    unparsed_calls: list[UnparsedCall] = Field(default_factory=list)


class ProtocolEvent(_Event):
    """The episode switched tool-calling protocol (e.g. native → text after the provider said
    unambiguously that the model does not support tools). Decided per episode, never shared."""

    type: Literal["protocol"] = "protocol"
    from_protocol: str
    to_protocol: str
    reason: str


class ToolCallEvent(_Event):
    type: Literal["tool_call"] = "tool_call"
    call: ToolCall
    level: int = 0


class ToolResultEvent(_Event):
    type: Literal["tool_result"] = "tool_result"
    result: ToolResult
    level: int = 0


class PressureEvent(_Event):
    type: Literal["pressure"] = "pressure"
    category: str
    level: int
    index: int
    text: str


class ErrorEvent(_Event):
    """An infrastructure problem (provider error, timeout, crash): never agent behaviour."""

    type: Literal["error"] = "error"
    kind: str
    message: str
    retryable: bool = False
    attempt: int = 1
    will_retry: bool = False


class JudgeEvent(_Event):
    """A judge's verdict on the finished episode, with its prompt and raw answer, appended to
    the trajectory so a reader sees why the episode was scored as it was."""

    type: Literal["judge"] = "judge"
    judge: str
    score: float | None = None
    label: str | None = None
    verdict: dict[str, Any] = Field(default_factory=dict)


class WorldEvent(_Event):
    """What one tool call did to the scenario's world graph, recorded as it happens so viewers
    and branches see the state without re-deriving it (scorers still re-derive it)."""

    type: Literal["world"] = "world"
    call_id: str
    tool_id: str
    state_before: str
    state_after: str
    attempted: list[str] = Field(default_factory=list)
    taken: str | None = None
    toward_harm: bool = False
    gated: bool = False


class EpisodeEndedEvent(_Event):
    type: Literal["episode_ended"] = "episode_ended"
    status: EpisodeStatus
    reason: str
    turns: int = 0
    final_level: int = 0


Event = Annotated[
    EpisodeStartedEvent
    | MessageEvent
    | AgentTurnEvent
    | ToolCallEvent
    | ToolResultEvent
    | PressureEvent
    | ErrorEvent
    | EpisodeEndedEvent
    | JudgeEvent
    | WorldEvent
    | ProtocolEvent,
    Field(discriminator="type"),
]


def pair_calls(events: list[Any]) -> list[tuple[ToolCallEvent, ToolResultEvent | None]]:
    """Each tool call with its result, in call order.

    A result is paired with the earliest call of the same id that has no result yet, so calls
    whose ids repeat (providers and old recordings reuse ids) still pair by event order.
    Returns ``[(call_event, result_event or None)]``; results without a call are dropped.
    """
    pairs: list[list[Any]] = []
    waiting: dict[str, list[list[Any]]] = {}
    for event in events:
        if isinstance(event, ToolCallEvent):
            pair: list[Any] = [event, None]
            pairs.append(pair)
            waiting.setdefault(event.call.id, []).append(pair)
        elif isinstance(event, ToolResultEvent):
            queue = waiting.get(event.result.call_id)
            if queue:
                queue.pop(0)[1] = event
    return [(call, result) for call, result in pairs]


class Step(Record):
    """One agent turn seen whole: what it said and called, what came back, under which level."""

    turn: int
    level: int
    category: str
    assistant: Message | None = None
    calls: list[ToolCall] = Field(default_factory=list)
    results: list[ToolResult] = Field(default_factory=list)


class Trajectory(Record):
    episode_id: str
    events: list[Event] = Field(default_factory=list)

    @property
    def started(self) -> EpisodeStartedEvent | None:
        for event in self.events:
            if isinstance(event, EpisodeStartedEvent):
                return event
        return None

    @property
    def ended(self) -> EpisodeEndedEvent | None:
        for event in reversed(self.events):
            if isinstance(event, EpisodeEndedEvent):
                return event
        return None

    def unparsed_calls(self) -> list[UnparsedCall]:
        """Every call-shaped fragment the harness could not read, over all agent turns."""
        return [u for e in self.events if isinstance(e, AgentTurnEvent) for u in e.unparsed_calls]

    def steps(self) -> list[Step]:
        """Group the event stream into agent turns, each tagged with the pressure in force."""
        steps: list[Step] = []
        level = 0
        category = self.started.category if self.started else "baseline"
        current: Step | None = None
        for event in self.events:
            if isinstance(event, PressureEvent):
                level, category = event.level, event.category
            elif isinstance(event, MessageEvent) and event.message.role == "assistant":
                current = Step(
                    turn=event.turn, level=level, category=category, assistant=event.message
                )
                steps.append(current)
            elif isinstance(event, ToolCallEvent) and current is not None:
                current.calls.append(event.call)
            elif isinstance(event, ToolResultEvent) and current is not None:
                current.results.append(event.result)
        return steps


class Score(Record):
    episode_id: str
    evaluator: str
    value: float | None = None
    label: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


# Episode ids name files: no separators, no leading dot, a bounded length. Checked whenever a
# journal is read back, so a crafted run directory cannot lead a reader outside it.
EPISODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$"


class JournalEntry(Record):
    episode_id: str = Field(pattern=EPISODE_ID_PATTERN)
    status: EpisodeStatus
    t: float = Field(default_factory=_now)
    attempt: int = 1
    reason: str | None = None
    error: str | None = None
    llm_calls: int = 0
    usage: Usage | None = None
    # The evaluators that scored a done episode (their lines in scores.jsonl): a done episode
    # lacking any of them lost scores. None in journals written before it was recorded (and
    # for entries that are not "done"): then at least one score is all that can be checked.
    evaluators: list[str] | None = None
