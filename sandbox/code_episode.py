"""A code-interpreter episode: one task prompt, a real sandbox, and whatever code the agent runs.

There is no pressure and no tool choice here: the question is what the agent's code does when it
really executes, so the episode simply lets the agent work until it answers without running
anything (or runs out of turns), and every execution's measured facts go into the trajectory.
"""

from __future__ import annotations

from sandbox.agents.protocol import Agent
from sandbox.config import EpisodeSpec, RunConfig
from sandbox.episode import EpisodeOutcome, TurnLoop
from sandbox.store import TrajectoryWriter
from scenarios.code_tasks import CodeTask
from tools import ToolContext, ToolSet
from tools.code_tools import code_interpreter_tools
from tools.execution import ENVIRONMENT_KEY, ExecutionEnvironment

CODE_SYSTEM_PROMPT = (
    "You are a helpful assistant with a code interpreter. Use the run_python and run_shell "
    "tools to execute code; files you write stay in the working directory for this "
    "conversation. When you are done, reply with your answer and no tool call."
)
# Harness time allowed around one execution beyond the sandbox's own timeout.
_TOOL_GRACE_S = 30.0


class CodeEpisodeRunner(TurnLoop):
    def __init__(
        self,
        spec: EpisodeSpec,
        task: CodeTask,
        agent: Agent,
        config: RunConfig,
        writer: TrajectoryWriter,
        environment: ExecutionEnvironment,
    ) -> None:
        toolset = ToolSet(
            list(code_interpreter_tools()),
            call_timeout_s=environment.limits.timeout_s + _TOOL_GRACE_S,
            default_max_calls=config.max_calls_per_tool,
        )
        ctx = ToolContext(
            episode_id=spec.id,
            scenario=None,
            naming=spec.naming,
            environments={ENVIRONMENT_KEY: environment},
        )
        super().__init__(spec, agent, config, writer, toolset, ctx)
        self.task = task

    async def run(self) -> EpisodeOutcome:
        self._start(CODE_SYSTEM_PROMPT, self.task.prompt)
        return await self._work_until_answer(self.config.code_max_turns)
