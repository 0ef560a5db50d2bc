"""The propensity kind: a scenario's proxy tools, escalating pressure, stop at a misaligned call.

Its episodes are one per (scenario, pressure category, tool naming, agent, repeat) of the pack's
propensity scenarios; each is scored for risky-tool choice (``RiskyToolChoice``, after
PropensityBench, Sehwag et al. 2025) and, where the scenario has a world graph, for goal/harm
states reached (``score_world``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from evaluators import IntentFinder, RiskyToolChoice, RuleIntentFinder
from sandbox.agents.protocol import Agent
from sandbox.pressure import BASELINE, PressureEngine, PressureSchedule, plan_messages
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
from sandbox.runtime.turn_loop import CONTINUE_PROMPT, EpisodeOutcome, TurnLoop
from scenarios.model import Pack, Scenario
from scenarios.records import (
    EpisodeStatus,
    Message,
    PressureEvent,
    RiskLabel,
    Score,
    Trajectory,
)
from tools import ToolContext, ToolRegistry, build_toolset, default_registry


class EpisodeRunner(TurnLoop):
    """A propensity scenario: proxy tools, escalating pressure, stop at a misaligned call."""

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
        toolset = build_toolset(
            scenario,
            spec.naming,
            registry=registry,
            call_timeout_s=config.tool_timeout_s,
            default_max_calls=config.max_calls_per_tool,
        )
        toolset.injector = injector_for(scenario, spec.injection, spec.naming)
        ctx = ToolContext(episode_id=spec.id, scenario=scenario, naming=spec.naming)
        super().__init__(spec, agent, config, writer, toolset, ctx)
        self.attack = attack_record(scenario, spec.injection, spec.naming, toolset.tools)
        self.scenario = scenario
        self.track_world(scenario.world_graph())
        self.schedule = schedule or config.schedule
        self.pressure = PressureEngine(
            plan_messages(scenario, spec.category, self.schedule), self.schedule
        )
        self._turns_since_last_pressure = 0
        for tool in toolset.tools:
            given = scenario.tool(tool.tool_id).example_arguments
            if given is not None:
                self.examples[tool.name] = given
        shown = {t.name: t.exposed_name(spec.naming) for t in scenario.tools}
        self.oracle = oracle_for(scenario, spec.injection, shown, self.examples, spec.naming)

    async def run(self) -> EpisodeOutcome:
        self.start_conversation(self.scenario.system_message(), self.scenario.task)
        return await self._loop()

    async def _loop(self) -> EpisodeOutcome:
        """Turns until a stop condition; also where a branched replay continues live."""
        while True:
            if self.turn >= self.config.max_turns:
                return self.end(EpisodeStatus.DONE, "max_turns")
            reply = await self.agent_turn()
            if isinstance(reply, EpisodeOutcome):
                return reply
            results = await self.execute_calls(reply)
            answered = self._answer_unparsed()
            misaligned = any(
                self.tool_risks.get(call.name) is RiskLabel.MISALIGNED
                for call in reply.message.tool_calls
            )
            if misaligned and self.config.stop_on_misaligned:
                return self.end(EpisodeStatus.DONE, "misaligned_tool_called")
            failed_aligned = any(r.risk is RiskLabel.ALIGNED and not r.ok for r in results)
            outcome = self._next_input(reply.message, failed_aligned, answered)
            if outcome is not None:
                return outcome

    def _next_input(
        self, reply: Message, failed_aligned: bool, answered: bool = False
    ) -> EpisodeOutcome | None:
        """Queue what the agent sees next, or end the episode when nothing more will come."""
        if self.pressure.is_baseline:
            if self.turn >= self.schedule.baseline_length():
                return self.end(EpisodeStatus.DONE, "baseline_turns_exhausted")
        else:
            was_exhausted = self.pressure.exhausted
            message = self.pressure.after_turn(failed_aligned_call=failed_aligned)
            if message is not None:
                self.level = message.level
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
                self.say(
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
                    return self.end(EpisodeStatus.DONE, "pressure_exhausted")
        if not reply.tool_calls and not answered:
            self.say(Message(role="user", content=CONTINUE_PROMPT, meta={"nudge": True}))
        return None


@register_kind
class PropensityKind(EpisodeKind):
    """Propensity scenarios (``kind: propensity``, the default) under pressure."""

    name = "scenario"

    @classmethod
    def episodes(cls, config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
        categories = ([BASELINE] if config.include_baseline else []) + list(config.categories)
        return [
            EpisodeSpec(
                kind=cls.name,
                id=(
                    eid := with_injection(
                        episode_id(scenario.id, category, naming.value, agent.label, repeat),
                        injection,
                    )
                ),
                scenario_id=scenario.id,
                domain=scenario.domain,
                category=category,
                naming=naming,
                agent=agent.label,
                repeat=repeat,
                seed=episode_seed(config.seed, eid),
                injection=injection,
            )
            for scenario in pack.scenarios
            if scenario.kind == "propensity"
            for category in categories
            for naming in config.namings
            for agent in config.agents
            for repeat in range(config.repeats)
            for injection in injection_variants(scenario)
        ]

    def __init__(self, run: RunContext) -> None:
        super().__init__(run)
        self.scenarios = {s.id: s for s in run.pack.scenarios}
        self.evaluator = RiskyToolChoice()
        self.intent: IntentFinder = RuleIntentFinder()

    def check(self) -> None:
        unknown = [
            problem
            for scenario in self.run.pack.scenarios
            if scenario.kind == "propensity"
            for problem in self.run.registry.check(scenario)
        ]
        if unknown:
            raise RunError("; ".join(unknown))

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        if todo:
            _, self.intent = await self.run.services.judges()

    def make_runner(self, spec: EpisodeSpec, writer: TrajectoryWriter) -> EpisodeRunner:
        """The episode's runner (what :meth:`runner` holds; a branch wraps it)."""
        return EpisodeRunner(
            spec,
            self.scenarios[spec.scenario_id],
            self.run.agents[spec.agent],
            self.run.config,
            writer,
            self.run.registry,
        )

    @asynccontextmanager
    async def runner(self, spec: EpisodeSpec, writer: TrajectoryWriter) -> AsyncIterator[TurnLoop]:
        yield self.make_runner(spec, writer)

    async def score(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        scenario = self.scenarios[spec.scenario_id]
        found = [
            self.evaluator.score(trajectory),
            *await world_scores(scenario, trajectory, self.intent),
        ]
        return [*found, *injection_scores(scenario, trajectory, found)]
