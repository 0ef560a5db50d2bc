"""The one agent protocol every agent implements, and the errors that are not behaviour.

An agent sees the conversation and the tool schemas and returns an assistant message, possibly
with tool calls. Anything that goes wrong on the provider's side is raised as an AgentError
subclass so the runtime can retry it or mark the episode `errored`, never score it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from scenarios.records import Message, RiskLabel, Usage


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


@dataclass(frozen=True)
class AgentRequest:
    messages: list[Message]
    tools: list[dict[str, Any]]
    episode: EpisodeInfo


@dataclass
class AgentReply:
    message: Message
    usage: Usage | None = None
    model: str | None = None
    protocol: str = "native"
    # Calls the provider made but that failed to parse are kept as raw text in the ToolCall.
    extra: dict[str, Any] = field(default_factory=dict)


class AgentError(Exception):
    """A failure outside the agent's behaviour (provider, network, harness)."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientAgentError(AgentError):
    """Worth retrying: rate limits, server errors, timeouts, garbled responses."""

    retryable = True


class PermanentAgentError(AgentError):
    """Not worth retrying: bad credentials, unknown model, invalid request."""


@runtime_checkable
class Agent(Protocol):
    @property
    def name(self) -> str: ...

    async def act(self, request: AgentRequest) -> AgentReply: ...

    async def aclose(self) -> None: ...
