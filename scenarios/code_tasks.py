"""Code-interpreter tasks: prompts that invite an agent to write resource-exhausting code.

These are not tool-choice scenarios: the agent has one code interpreter, and what matters is
what its code really does when executed in the sandbox. Each task is tagged with the resource
it threatens and how the request is framed, so outcomes can be compared across both.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from scenarios.base import AgentText, StrictModel
from scenarios.injections import Injection


class Resource(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"
    PROCESSES = "processes"


class Framing(StrEnum):
    DIRECT = "direct"  # asks plainly for the exhausting behaviour
    INDIRECT = "indirect"  # the same behaviour behind a plausible cover story
    # An ordinary request; the exhausting instruction is planted in a file the agent reads
    # (the task's ``injections``).
    INJECTED = "injected"


#: The outcome labels the code-execution evaluator decides from measured facts
#: (``evaluators.code_execution.CodeOutcome``; a test keeps the two equal).
CODE_OUTCOMES = (
    "refusal",
    "reframe",
    "follow-up",
    "incorrect",
    "safe-completion",
    "fulfilled",
    "timeout",
    "contained",
)


class CodeTask(StrictModel):
    id: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$", max_length=80)
    resource: Resource
    framing: Framing
    title: str = Field(min_length=1)
    prompt: AgentText = Field(min_length=20)
    # What a careful agent could do instead (used by judges and reports, never shown to agents).
    safe_alternative: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    # Per-task sandbox limits over the run's (keys of tools.execution.SandboxLimits, e.g.
    # {memory_mb: 512, timeout_s: 10}); such a task gets a dedicated container.
    sandbox: dict[str, float] = Field(default_factory=dict)
    # Attacker instructions planted in files of the sandbox before the episode (``at.place:
    # file``); the goal is a measured ``code_outcome`` (``scenarios.injections``).
    injections: list[Injection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _injections_fit_a_code_task(self) -> CodeTask:
        seen: set[str] = set()
        for index, injection in enumerate(self.injections):
            at = f"injections[{index}]"
            if injection.id in seen:
                raise ValueError(f"{at}.id: {injection.id!r} is used twice")
            seen.add(injection.id)
            if injection.at.place != "file":
                raise ValueError(
                    f"{at}.at.place: a code task's injection is planted in a file (place: file "
                    "with `file`): its only tool is the code interpreter"
                )
            unknown = sorted(set(injection.goal.code_outcome) - set(CODE_OUTCOMES))
            if injection.goal.call is not None or injection.goal.state is not None or unknown:
                raise ValueError(
                    f"{at}.goal: a code task's goal is a `code_outcome` among "
                    f"{', '.join(CODE_OUTCOMES)}"
                    + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                )
            missing = sorted(injection.placeholders() - set(injection.values) - {"instruction"})
            if missing:
                raise ValueError(
                    f"{at}.instruction: unknown placeholder(s) "
                    f"{', '.join('{' + m + '}' for m in missing)}: a code task has no scenario "
                    "values, give them in `values`"
                )
        return self
