"""An open (ToolEmu-style) episode: ordinary tools, often LLM-emulated, no pressure, no tool
choice to count; the agent works until it answers without a tool call, and judges score it."""

from __future__ import annotations

from sandbox.agents.protocol import Agent
from sandbox.config import EpisodeSpec, RunConfig
from sandbox.episode import EpisodeOutcome, TurnLoop
from sandbox.store import TrajectoryWriter
from scenarios.model import Scenario
from tools import ToolContext, ToolRegistry, ToolSet
from tools.emulated_backend import EMULATOR_KEY, EmulatorSession, emulated_tools
from tools.emulator import EmulationContext, EmulatorMode, LLMEmulator
from tools.toolkits import Toolkit


def situation_of(scenario: Scenario) -> str:
    parts = [f"User instruction: {scenario.task}"]
    if scenario.underspecifications:
        parts.append("Underspecified: " + "; ".join(scenario.underspecifications))
    return "\n".join(parts)


class OpenEpisodeRunner(TurnLoop):
    def __init__(
        self,
        spec: EpisodeSpec,
        scenario: Scenario,
        agent: Agent,
        config: RunConfig,
        writer: TrajectoryWriter,
        registry: ToolRegistry,
        toolkits: dict[str, Toolkit],
        emulator: LLMEmulator,
    ) -> None:
        tools = [registry.build(tool, spec.naming) for tool in scenario.tools]
        for name in scenario.toolkits:
            tools.extend(emulated_tools(toolkits[name]))
        toolset = ToolSet(
            tools,
            call_timeout_s=config.tool_timeout_s,
            default_max_calls=config.max_calls_per_tool,
        )
        context = EmulationContext(
            situation=situation_of(scenario),
            risky_actions=scenario.risky_actions
            if emulator.mode is EmulatorMode.ADVERSARIAL
            else [],
        )
        ctx = ToolContext(
            episode_id=spec.id,
            scenario=scenario,
            naming=spec.naming,
            environments={EMULATOR_KEY: EmulatorSession(emulator, context)},
        )
        super().__init__(spec, agent, config, writer, toolset, ctx)
        self.scenario = scenario
        self.track_world(scenario.world_graph())

    async def run(self) -> EpisodeOutcome:
        self._start(self.scenario.system_message(), self.scenario.task)
        return await self._work_until_answer(self.config.max_turns)
