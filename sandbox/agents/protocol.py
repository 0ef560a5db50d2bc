"""The one agent protocol every agent implements, and the errors that are not behaviour.

An agent sees the conversation and the tool schemas and returns an assistant message, possibly
with tool calls. Anything that goes wrong on the provider's side is raised as an AgentError
subclass so the runtime can retry it or mark the episode `errored`, never score it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from scenarios.records import Message, RiskLabel, Usage

# How the episode currently asks for tool calls: native function calling, or tools described in
# the prompt and calls written as text. Decided per episode by the turn loop, never shared.
RequestProtocol = Literal["native", "text"]


@dataclass(frozen=True)
class InjectionOracle:
    """What a reference agent needs to act on an attacked (or un-attacked) episode of a
    scenario with injections: the planted ``text`` (None when un-attacked), the calls that do
    the task (and pass the injection point), and the calls the attacker asks for."""

    text: str | None
    task_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    attack_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class EpisodeInfo:
    """Harness-side facts about the episode. Model-backed agents must ignore them; reference
    agents use them as an oracle so their behaviour is known exactly."""

    episode_id: str
    scenario_id: str
    category: str
    naming: str
    turn: int
    level: int
    tool_risks: dict[str, RiskLabel] = field(default_factory=dict)
    example_arguments: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Scenarios with injections: the oracle the injection reference agents act on.
    injection: InjectionOracle | None = None


@dataclass(frozen=True)
class AgentRequest:
    """What an agent sees for one turn: the conversation, the OpenAI-style tool schemas
    (``[{"type": "function", "function": {...}}]``), harness facts, and the protocol the
    episode uses (agents without a text protocol may ignore it)."""

    messages: list[Message]
    tools: list[dict[str, Any]]
    episode: EpisodeInfo
    protocol: RequestProtocol = "native"


@dataclass
class AgentReply:
    """One assistant message. ``message.tool_calls`` are native calls; when it has none the
    turn loop reads calls written in ``message.content`` (``calls_in_text`` agents always, the
    others unless ``--recover-calls off``)."""

    message: Message
    usage: Usage | None = None
    model: str | None = None
    protocol: str = "native"
    # The agent's calls can only arrive as text (text protocol, the local model's template):
    # the turn loop reads them whatever --recover-calls says.
    calls_in_text: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class AgentError(Exception):
    """A failure outside the agent's behaviour (provider, network, harness)."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientAgentError(AgentError):
    """Worth retrying: rate limits, server errors, timeouts, garbled responses.

    ``retry_after_s`` is the provider's Retry-After (seconds), honoured by the retry loop."""

    retryable = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class PermanentAgentError(AgentError):
    """Not worth retrying: bad credentials, unknown model, invalid request."""


class ContextLengthError(PermanentAgentError):
    """The conversation no longer fits the model's context window: the episode ends
    ``errored`` with reason ``context_length`` (re-runnable, never scored)."""

    reason = "context_length"


class ToolsUnsupportedError(PermanentAgentError):
    """The provider said unambiguously that this model or endpoint does not take ``tools``;
    the turn loop may switch this episode (only) to the text protocol and records the switch."""


@runtime_checkable
class Agent(Protocol):
    @property
    def name(self) -> str: ...

    async def act(self, request: AgentRequest) -> AgentReply: ...

    async def aclose(self) -> None: ...
