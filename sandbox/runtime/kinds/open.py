"""The open kind (ToolEmu-style): ordinary tools, often LLM-emulated, no pressure and no tool
choice to count; the agent works until it answers without a tool call, and judges score it.

One episode per (open scenario, agent, repeat): open scenarios have no pressure categories or
tool namings (their episodes carry ``baseline`` and ``harmful``). Scored by the run's judge for
safety and helpfulness (``judge_trajectory``; ToolEmu, Ruan et al. 2024) and, with a world
graph, by ``score_world``. Needs ``--toolkits`` specs for the emulated toolkits it names and
``--emulator-model``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from evaluators import (
    IntentFinder,
    JudgeInput,
    LLMJudge,
    RuleIntentFinder,
    RuleJudge,
    judge_trajectory,
)
from evaluators.judges import world_evidence
from sandbox.agents.protocol import Agent
from sandbox.pressure import BASELINE
from sandbox.results.store import TrajectoryWriter
from sandbox.runtime.config import EpisodeSpec, RunConfig, episode_id, episode_seed
from sandbox.runtime.errors import RunError
from sandbox.runtime.injecting import (
    attack_record,
    injection_scores,
    injection_variants,
    injector_for,
    oracle_for,
    with_injection,
)
from sandbox.runtime.kinds.base import EpisodeKind, RunContext, register_kind
from sandbox.runtime.kinds.worlds import world_scores
from sandbox.runtime.services import cache_endpoint
from sandbox.runtime.turn_loop import EpisodeOutcome, TurnLoop
from scenarios.model import Pack, Scenario
from scenarios.records import JudgeEvent, Naming, Score, Trajectory
from tools import ToolContext, ToolRegistry, ToolSet
from tools.emulated_backend import (
    EMULATOR_KEY,
    EmulatorSession,
    emulated_tools,
    load_toolkit_library,
)
from tools.emulator import EmulationContext, EmulatorMode, LLMEmulator
from tools.toolkits import Toolkit, ToolkitLoadError


def judge_input_of(scenario: Scenario) -> JudgeInput:
    """What the judges are told of an open scenario (its steps come from the trajectory);
    replay builds it the same way to judge a recording again."""
    return JudgeInput(
        task=scenario.task,
        underspecifications=scenario.underspecifications,
        expected_achievements=scenario.expected_achievements,
        potential_risky_outcomes=scenario.risky_outcomes,
        potential_risky_actions=scenario.risky_actions,
    )


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
            injector=injector_for(scenario, spec.injection, spec.naming),
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
        self.attack = attack_record(scenario, spec.injection, spec.naming, toolset.tools)
        own = {tool.name for tool in scenario.tools}
        for tool in toolset.tools:
            given = scenario.tool(tool.tool_id).example_arguments if tool.tool_id in own else None
            if given is not None:
                self.examples[tool.name] = given
        shown = {t.name: t.exposed_name(spec.naming) for t in scenario.tools}
        self.oracle = oracle_for(scenario, spec.injection, shown, self.examples, spec.naming)
        self.scenario = scenario
        self.track_world(scenario.world_graph())

    async def run(self) -> EpisodeOutcome:
        self.start_conversation(self.scenario.system_message(), self.scenario.task)
        return await self.work_until_answer(self.config.max_turns)


@register_kind
class OpenKind(EpisodeKind):
    """Open scenarios (``kind: open``) with registered and emulated tools, judged."""

    name = "open"

    @classmethod
    def episodes(cls, config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
        return [
            EpisodeSpec(
                kind=cls.name,
                id=(
                    eid := with_injection(
                        episode_id(
                            scenario.id, BASELINE, Naming.HARMFUL.value, agent.label, repeat
                        ),
                        injection,
                    )
                ),
                scenario_id=scenario.id,
                domain=scenario.domain,
                category=BASELINE,
                naming=Naming.HARMFUL,
                agent=agent.label,
                repeat=repeat,
                seed=episode_seed(config.seed, eid),
                injection=injection,
            )
            for scenario in pack.scenarios
            if scenario.kind == "open"
            for agent in config.agents
            for repeat in range(config.repeats)
            for injection in injection_variants(scenario)
        ]

    def __init__(self, run: RunContext) -> None:
        super().__init__(run)
        self.scenarios = {s.id: s for s in run.pack.scenarios if s.kind == "open"}
        self.toolkits: dict[str, Toolkit] = {}
        self.emulator: LLMEmulator | None = None
        self.judge: LLMJudge | RuleJudge = RuleJudge()
        self.intent: IntentFinder = RuleIntentFinder()

    def check(self) -> None:
        """Open scenarios need their tools, their toolkits and an emulator model."""
        scenarios = list(self.scenarios.values())
        unknown = [p for s in scenarios for p in self.run.registry.check(s)]
        if unknown:
            raise RunError("; ".join(unknown))
        if not scenarios:
            return
        config = self.run.config
        try:
            self.toolkits = load_toolkit_library(config.toolkit_paths)
        except (OSError, ValueError, ToolkitLoadError) as exc:
            raise RunError(f"cannot load toolkits: {exc}") from exc
        missing = sorted({n for s in scenarios for n in s.toolkits} - set(self.toolkits))
        if missing:
            raise RunError(
                f"toolkits not found: {', '.join(missing)} (give their specs with --toolkits "
                "PATH: our YAML/JSON toolkits or ToolEmu's all_toolkits.json)"
            )
        if any(s.toolkits for s in scenarios) and not config.emulator_model:
            raise RunError("emulated toolkits need --emulator-model (any litellm model)")

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        if not todo:
            return
        config = self.run.config
        self.judge, self.intent = await self.run.services.judges()
        model, api_base = await self.run.services.endpoint(
            config.emulator_model, config.emulator_api_base
        )
        self.emulator = LLMEmulator(
            model or "none",
            mode=EmulatorMode(config.emulator_mode),
            cache=self.run.services.cache,
            api_base=api_base,
            timeout_s=config.call_timeout_s,
            endpoint_key=cache_endpoint(config.emulator_model, config.emulator_api_base),
        )

    @asynccontextmanager
    async def runner(self, spec: EpisodeSpec, writer: TrajectoryWriter) -> AsyncIterator[TurnLoop]:
        assert self.emulator is not None, "start() runs before any episode"
        yield OpenEpisodeRunner(
            spec,
            self.scenarios[spec.scenario_id],
            self.run.agents[spec.agent],
            self.run.config,
            writer,
            self.run.registry,
            self.toolkits,
            self.emulator,
        )

    async def score(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        scenario = self.scenarios[spec.scenario_id]
        world = await world_scores(scenario, trajectory, self.intent)
        inp = judge_input_of(scenario)
        if world:  # the world's facts are better evidence than keywords for the rule judge
            inp = inp.model_copy(update={"world": world_evidence(world[0])})
        scores = await judge_trajectory(trajectory, inp, self.judge)
        # The verdicts go into the trajectory too, where a reader of the episode sees them.
        await asyncio.to_thread(
            self.run.store.append_events,
            spec.id,
            [
                JudgeEvent(judge=s.evaluator, score=s.value, label=s.label, verdict=s.details)
                for s in scores
            ],
        )
        found = [*scores, *world]
        return [*found, *injection_scores(scenario, trajectory, found)]
