"""One episode: agent turn → every tool call executed in order → pressure → stop condition.

Every event is written to the trajectory the moment it happens. Infrastructure failures end the
episode as `errored` (recorded, never scored); everything the agent does is behaviour.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from sandbox.agents.protocol import Agent, AgentError, AgentRequest, EpisodeInfo
from sandbox.config import EpisodeSpec, RunConfig
from sandbox.pressure import PressureEngine, PressureSchedule, plan_messages
from sandbox.retry import call_with_retries
from sandbox.store import TrajectoryWriter
from scenarios.model import Scenario
from scenarios.records import (
    AgentTurnEvent,
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    EpisodeStatus,
    ErrorEvent,
    Message,
    MessageEvent,
    PressureEvent,
    RiskLabel,
    ToolCallEvent,
    ToolResultEvent,
)
from tools import ToolContext, ToolRegistry, ToolSet, build_toolset, default_registry
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


class EpisodeRunner:
    def __init__(
        self,
        spec: EpisodeSpec,
        scenario: Scenario,
        agent: Agent,
        config: RunConfig,
        writer: TrajectoryWriter,
        registry: ToolRegistry = default_registry,
        schedule: PressureSchedule | None = None,
    ) -> None:
        self.spec = spec
        self.scenario = scenario
        self.agent = agent
        self.config = config
        self.writer = writer
        self.toolset = build_toolset(
            scenario,
            spec.naming,
            registry=registry,
            call_timeout_s=config.tool_timeout_s,
            default_max_calls=config.max_calls_per_tool,
        )
        self.schedule = schedule or config.schedule
        self.pressure = PressureEngine(
            plan_messages(scenario, spec.category, self.schedule), self.schedule
        )
        self.ctx = ToolContext(episode_id=spec.id, scenario=scenario, naming=spec.naming)
        self.rng = random.Random(spec.seed)
        self.messages: list[Message] = []
        self.turn = 0
        self._turns_since_last_pressure = 0
        self._tool_risks = {tool.name: tool.risk for tool in self.toolset.tools}
        self._examples = {
            tool.name: (
                scenario.tool(tool.tool_id).example_arguments or example_arguments(tool.parameters)
            )
            for tool in self.toolset.tools
        }

    def _say(self, message: Message) -> None:
        self.messages.append(message)
        self.writer.write(MessageEvent(message=message, turn=self.turn))

    def _end(self, status: EpisodeStatus, reason: str, error: str | None = None) -> EpisodeOutcome:
        self.writer.write(
            EpisodeEndedEvent(
                status=status,
                reason=reason,
                turns=self.turn,
                final_level=self.pressure.level,
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

    async def run(self) -> EpisodeOutcome:
        spec, scenario = self.spec, self.scenario
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
            )
        )
        self._say(Message(role="system", content=scenario.system_message()))
        self._say(Message(role="user", content=scenario.task))
        while True:
            if self.turn >= self.config.max_turns:
                return self._end(EpisodeStatus.DONE, "max_turns")
            request = AgentRequest(
                messages=list(self.messages),
                tools=self.toolset.schemas(),
                episode=EpisodeInfo(
                    episode_id=spec.id,
                    scenario_id=spec.scenario_id,
                    category=spec.category,
                    naming=spec.naming.value,
                    turn=self.turn,
                    level=self.pressure.level,
                    tool_risks=self._tool_risks,
                    example_arguments=self._examples,
                ),
            )
            self.writer.flush()
            started = time.perf_counter()
            try:
                reply, attempts = await call_with_retries(
                    lambda: self.agent.act(request),  # noqa: B023 - awaited within this turn
                    self.config.retry,
                    timeout_s=self.config.call_timeout_s,
                    on_error=self._record_error,
                    rng=self.rng,
                )
            except AgentError as error:
                return self._end(EpisodeStatus.ERRORED, "agent_error", str(error)[:2000])
            self.turn += 1
            self.writer.write(
                AgentTurnEvent(
                    model=reply.model,
                    latency_s=round(time.perf_counter() - started, 6),
                    attempts=attempts,
                    usage=reply.usage,
                    protocol=reply.protocol,
                    turn=self.turn,
                )
            )
            self._say(reply.message)
            misaligned = failed_aligned = False
            for call in reply.message.tool_calls:
                level = self.pressure.level
                self.writer.write(ToolCallEvent(call=call, level=level, turn=self.turn))
                result = await self.toolset.execute(call, self.ctx)
                self.writer.write(ToolResultEvent(result=result, level=level, turn=self.turn))
                self._say(
                    Message(
                        role="tool",
                        content=result.output,
                        tool_call_id=call.id,
                        name=call.name,
                    )
                )
                if self._tool_risks.get(call.name) is RiskLabel.MISALIGNED:
                    misaligned = True
                if result.risk is RiskLabel.ALIGNED and not result.ok:
                    failed_aligned = True
            if misaligned and self.config.stop_on_misaligned:
                return self._end(EpisodeStatus.DONE, "misaligned_tool_called")
            outcome = self._next_input(reply.message, failed_aligned)
            if outcome is not None:
                return outcome

    def _next_input(self, reply: Message, failed_aligned: bool) -> EpisodeOutcome | None:
        """Queue what the agent sees next, or end the episode when nothing more will come."""
        if self.pressure.is_baseline:
            if self.turn >= self.schedule.baseline_turns:
                return self._end(EpisodeStatus.DONE, "baseline_turns_exhausted")
        else:
            was_exhausted = self.pressure.exhausted
            message = self.pressure.after_turn(failed_aligned_call=failed_aligned)
            if message is not None:
                self._turns_since_last_pressure = 0
                self.writer.write(
                    PressureEvent(
                        category=message.category,
                        level=message.level,
                        index=message.index,
                        text=message.text,
                        turn=self.turn,
                    )
                )
                self._say(
                    Message(
                        role="user",
                        content=message.text,
                        meta={
                            "pressure": {
                                "category": message.category,
                                "level": message.level,
                                "index": message.index,
                            }
                        },
                    )
                )
                return None
            if was_exhausted:
                self._turns_since_last_pressure += 1
                if self._turns_since_last_pressure >= self.schedule.turns_after_last:
                    return self._end(EpisodeStatus.DONE, "pressure_exhausted")
        if not reply.tool_calls:
            self._say(Message(role="user", content=CONTINUE_PROMPT, meta={"nudge": True}))
        return None
