"""One episode: agent turn → every tool call executed in order → pressure → stop condition.

Every event is written to the trajectory the moment it happens. Infrastructure failures end the
episode as `errored` (recorded, never scored); everything the agent does is behaviour.
"""

from __future__ import annotations

import functools
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sandbox.agents.protocol import (
    Agent,
    AgentError,
    AgentReply,
    AgentRequest,
    ContextLengthError,
    EpisodeInfo,
    InjectionOracle,
    RequestProtocol,
    ToolsUnsupportedError,
)
from sandbox.agents.reply_reading import corrective_message, offered_names, read_reply
from sandbox.results.store import TrajectoryWriter
from sandbox.runtime.config import EpisodeSpec, RunConfig
from sandbox.runtime.defences import Defence
from sandbox.runtime.retry import call_with_retries
from scenarios.records import (
    AgentTurnEvent,
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    EpisodeStatus,
    ErrorEvent,
    Message,
    MessageEvent,
    ProtocolEvent,
    ToolCall,
    ToolCallEvent,
    ToolErrorKind,
    ToolResult,
    ToolResultEvent,
    UnparsedCall,
    WorldEvent,
)
from scenarios.world import WorldGraph, WorldTracker
from tools import ToolContext, ToolSet
from tools.arguments import example_arguments

CONTINUE_PROMPT = "Please continue with the task."


@dataclass
class EpisodeOutcome:
    status: EpisodeStatus
    reason: str
    error: str | None = None


def _tool_manifest(toolset: ToolSet) -> list[dict[str, object]]:
    return [
        {**schema, "x-risk": tool.risk.value, "x-tool-id": tool.tool_id}
        for schema, tool in zip(toolset.schemas(), toolset.tools, strict=True)
    ]


class TurnLoop(ABC):
    """What every kind of episode shares: the agent turn with retries, tool execution, and
    writing each event the moment it happens. A kind's runner subclasses it and implements
    :meth:`run` (typically ``start_conversation(system, task)``, then a loop of ``agent_turn``
    and ``execute_calls``, or ``work_until_answer``)."""

    def __init__(
        self,
        spec: EpisodeSpec,
        agent: Agent,
        config: RunConfig,
        writer: TrajectoryWriter,
        toolset: ToolSet,
        ctx: ToolContext,
    ) -> None:
        self.spec = spec
        self.agent = agent
        self.config = config
        self.writer = writer
        self.toolset = toolset
        self.ctx = ctx
        self.rng = random.Random(spec.seed)
        # Its own generator: the defence's tag must not shift the episode's other draws.
        self.defence = Defence(config.defence, random.Random(spec.seed ^ 0x5DEECE66D))
        self.messages: list[Message] = []
        self.turn = 0
        self.level = 0
        self.tool_risks = {tool.name: tool.risk for tool in toolset.tools}
        self.examples: dict[str, dict[str, Any]] = {
            tool.name: example_arguments(tool.parameters) for tool in toolset.tools
        }
        self.world: WorldTracker | None = None
        # An attacked episode's attack, recorded in its episode_started event (set by the kind's
        # runner with ``sandbox.runtime.injecting.attack_record``).
        self.attack: dict[str, Any] | None = None
        # What the injection reference agents act on (``injecting.oracle_for``), if set.
        self.oracle: InjectionOracle | None = None
        # The episode's own tool-calling protocol: switched (and recorded) only for this
        # episode when the provider says it takes no tools; never shared with other episodes.
        self.protocol: RequestProtocol = "native"
        self._declared_text = any(
            a.label == spec.agent and a.tool_protocol == "text" for a in config.agents
        )
        self.protocol_switches: list[ProtocolEvent] = []
        # Call-shaped text of the last agent turn that could not be read as a call.
        self.unparsed: list[UnparsedCall] = []
        # Told as each agent call (every attempt) goes out: live progress for slow models.
        self.on_agent_call: Callable[[EpisodeSpec], None] = lambda _: None

    @abstractmethod
    async def run(self) -> EpisodeOutcome:
        """Run the episode to its end; every event is written as it happens."""

    def track_world(self, graph: WorldGraph | None) -> None:
        """Follow the episode through ``graph``: gate tools by state and record transitions."""
        self.world = WorldTracker(graph) if graph is not None else None

    def offered_schemas(self) -> list[dict[str, Any]]:
        """The tools the agent is shown now: all of them, minus those the world gates away."""
        if self.world is None or not self.world.graph.gates:
            return self.toolset.schemas()
        state = self.world.current
        return [
            schema
            for schema, tool in zip(self.toolset.schemas(), self.toolset.tools, strict=True)
            if self.world.graph.tool_allowed(state, tool.tool_id)
        ]

    def _gated_result(self, call: ToolCall) -> ToolResult | None:
        """An error result for a call the world does not allow in its current state."""
        tool = self.toolset.get(call.name)
        if self.world is None or tool is None:
            return None
        if self.world.graph.tool_allowed(self.world.current, tool.tool_id):
            return None
        return ToolResult(
            call_id=call.id,
            name=call.name,
            ok=False,
            output=f"Error: {call.name} is not available at this point (state "
            f"{self.world.current!r}).",
            error_kind=ToolErrorKind.GATED,
            risk=tool.risk,
            tool_id=tool.tool_id,
        )

    def _observe_world(self, call: ToolCall, result: ToolResult, seq: int) -> None:
        if self.world is None:
            return
        step = self.world.observe(call, result, step=seq)
        self.writer.write(
            WorldEvent(
                call_id=call.id,
                tool_id=step.tool_id,
                state_before=step.state_before,
                state_after=step.state_after,
                attempted=step.attempted,
                taken=step.taken,
                toward_harm=step.toward_harm,
                gated=step.gated,
                turn=self.turn,
            )
        )

    def say(self, message: Message) -> None:
        """Add ``message`` to what the agent sees next, and record it."""
        self.messages.append(message)
        self.writer.write(MessageEvent(message=message, turn=self.turn))

    def end(self, status: EpisodeStatus, reason: str, error: str | None = None) -> EpisodeOutcome:
        """Record the episode's end (``reason`` is what the report's end reasons count)."""
        self.writer.write(
            EpisodeEndedEvent(
                status=status,
                reason=reason,
                turns=self.turn,
                final_level=self.level,
                turn=self.turn,
            )
        )
        return EpisodeOutcome(status, reason, error)

    def _record_error(self, error: AgentError, attempt: int, will_retry: bool) -> None:
        self.writer.write(
            ErrorEvent(
                kind=type(error).__name__,
                message=str(error)[:2000],
                retryable=error.retryable,
                attempt=attempt,
                will_retry=will_retry,
                turn=self.turn,
            )
        )

    def start_conversation(self, system: str, task: str) -> None:
        """Record the episode's start (its offered tools included), then the system message and
        the task, as the agent's first two messages."""
        self._write_started()
        self.say(Message(role="system", content=self.defence.system(system)))
        self.say(Message(role="user", content=task))

    def _write_started(self, branched_from: dict[str, Any] | None = None) -> None:
        spec = self.spec
        self.writer.write(
            EpisodeStartedEvent(
                episode_id=spec.id,
                scenario_id=spec.scenario_id,
                domain=spec.domain,
                agent=spec.agent,
                category=spec.category,
                naming=spec.naming,
                repeat=spec.repeat,
                seed=spec.seed,
                tools=_tool_manifest(self.toolset),
                kind=spec.kind,
                branched_from=branched_from,
                injection=self.attack,
            )
        )

    def _request(self) -> AgentRequest:
        spec = self.spec
        return AgentRequest(
            messages=list(self.messages),
            tools=self.offered_schemas(),
            episode=EpisodeInfo(
                episode_id=spec.id,
                scenario_id=spec.scenario_id,
                category=spec.category,
                naming=spec.naming.value,
                turn=self.turn,
                level=self.level,
                tool_risks=self.tool_risks,
                example_arguments=self.examples,
                injection=self.oracle,
            ),
            protocol=self.protocol,
        )

    def _switch_protocol(self, error: ToolsUnsupportedError) -> None:
        event = ProtocolEvent(
            from_protocol=self.protocol,
            to_protocol="text",
            reason=str(error)[:500],
            turn=self.turn,
        )
        self.writer.write(event)
        self.protocol_switches.append(event)
        self.protocol = "text"

    def _act(self, request: AgentRequest) -> Awaitable[AgentReply]:
        """One attempt at the agent call, announced to ``on_agent_call`` as it goes out."""
        self.on_agent_call(self.spec)
        return self.agent.act(request)

    async def agent_turn(self) -> AgentReply | EpisodeOutcome:
        """One agent reply (retried on provider errors), or the end of an errored episode."""
        while True:
            request = self._request()
            self.writer.flush()
            started = time.perf_counter()
            try:
                reply, attempts = await call_with_retries(
                    functools.partial(self._act, request),
                    self.config.retry,
                    timeout_s=self.config.call_timeout_s,
                    on_error=self._record_error,
                    rng=self.rng,
                )
            except ToolsUnsupportedError as error:
                if self.protocol == "native":
                    self._switch_protocol(error)
                    continue
                return self.end(EpisodeStatus.ERRORED, "agent_error", str(error)[:2000])
            except ContextLengthError as error:
                return self.end(EpisodeStatus.ERRORED, error.reason, str(error)[:2000])
            except AgentError as error:
                return self.end(EpisodeStatus.ERRORED, "agent_error", str(error)[:2000])
            break
        self.turn += 1
        if self.protocol == "text" or self._declared_text:
            # Asked to write calls as text (e.g. a Python agent run with --tool-protocol text):
            # its text is read whatever --recover-calls says.
            reply.calls_in_text = True
        read = read_reply(
            reply,
            offered_names(request.tools),
            turn=self.turn,
            recover=self.config.recover_calls,
        )
        self.unparsed = read.unparsed
        self.writer.write(
            AgentTurnEvent(
                model=reply.model,
                latency_s=round(time.perf_counter() - started, 6),
                attempts=attempts,
                usage=reply.usage,
                protocol=reply.protocol,
                native_calls=read.native_calls,
                recovered_calls=read.recovered,
                unparsed_calls=read.unparsed,
                turn=self.turn,
            )
        )
        reply.message = read.message
        self.say(reply.message)
        return reply

    def _answer_unparsed(self) -> bool:
        """Tell the agent about call text that could not be read; True when there was some."""
        if not self.unparsed:
            return False
        in_text = self.protocol == "text" or self._declared_text
        self.say(corrective_message(self.unparsed, "text" if in_text else "native"))
        return True

    async def execute_calls(self, reply: AgentReply) -> list[ToolResult]:
        """Every call of the reply, in order, each result recorded and shown to the agent."""
        results = []
        for call in reply.message.tool_calls:
            call_event = ToolCallEvent(call=call, level=self.level, turn=self.turn)
            self.writer.write(call_event)
            result = self._gated_result(call) or await self.toolset.execute(call, self.ctx)
            self.writer.write(ToolResultEvent(result=result, level=self.level, turn=self.turn))
            self._observe_world(call, result, call_event.seq)
            self.say(
                Message(
                    role="tool",
                    content=self.defence.output(result.output),
                    tool_call_id=call.id,
                    name=call.name,
                )
            )
            results.append(result)
        return results

    async def work_until_answer(self, max_turns: int) -> EpisodeOutcome:
        """Let the agent work until it answers without a tool call, or runs out of turns."""
        while self.turn < max_turns:
            reply = await self.agent_turn()
            if isinstance(reply, EpisodeOutcome):
                return reply
            if not reply.message.tool_calls and not self.unparsed:
                return self.end(EpisodeStatus.DONE, "agent_finished")
            await self.execute_calls(reply)
            self._answer_unparsed()
        return self.end(EpisodeStatus.DONE, "max_turns")
