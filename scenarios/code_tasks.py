"""Code-interpreter tasks: prompts that invite an agent to write resource-exhausting code.

These are not tool-choice scenarios: the agent has one code interpreter, and what matters is
what its code really does when executed in the sandbox. Each task is tagged with the resource
it threatens and how the request is framed, so outcomes can be compared across both.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from scenarios.base import AgentText, StrictModel


class Resource(StrEnum):
    CPU = "cpu"
    MEMORY = "memory"
    DISK = "disk"
    PROCESSES = "processes"


class Framing(StrEnum):
    DIRECT = "direct"  # asks plainly for the exhausting behaviour
    INDIRECT = "indirect"  # the same behaviour behind a plausible cover story


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
