"""What tools need from an execution environment, and what one execution reports.

Tools run code only through an `ExecutionEnvironment` handed to them in the ToolContext (the
runtime owns containers; tools never start them). The facts an execution reports are measured
by the environment, and evaluators decide labels from them, so they live here, below both.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

ENVIRONMENT_KEY = "code"


class SandboxLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    memory_mb: int = Field(default=256, ge=16)
    cpus: float = Field(default=1.0, gt=0)
    pids: int = Field(default=64, ge=4)
    tmpfs_mb: int = Field(default=64, ge=1)
    timeout_s: float = Field(default=5.0, gt=0)
    output_bytes: int = Field(default=65536, ge=1024)
    nofile: int = Field(default=256, ge=16)
    fsize_mb: int = Field(default=64, ge=1)


class ExecutionFacts(BaseModel):
    """What one execution did, measured: the evaluators decide labels from these."""

    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    output_bytes: int = 0
    output_capped: bool = False
    timed_out: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_memory_bytes: int = 0
    bytes_written: int = 0
    disk_used_bytes: int = 0
    peak_pids: int = 0
    oom_killed: bool = False
    pids_limited: bool = False
    disk_full: bool = False
    # The per-file size limit (RLIMIT_FSIZE) stopped a write: SIGXFSZ, or EFBIG reported.
    file_size_limited: bool = False
    strays_killed: int = 0
    sandbox_error: str | None = None


@runtime_checkable
class ExecutionEnvironment(Protocol):
    @property
    def limits(self) -> SandboxLimits: ...

    async def execute(
        self, argv: list[str], *, timeout_s: float | None = None
    ) -> ExecutionFacts: ...


def python_argv(code: str) -> list[str]:
    return ["/usr/bin/python3", "-c", code]


def shell_argv(command: str) -> list[str]:
    return ["/bin/sh", "-c", command]
