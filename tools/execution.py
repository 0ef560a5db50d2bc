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
    # The per-file size limit (RLIMIT_FSIZE) was reached: the code died of SIGXFSZ, or a file
    # reached the limit (seen by the host, so it stays a fact if the code caught EFBIG).
    file_size_limited: bool = False
    # A process of the code held as many open files as RLIMIT_NOFILE allows (seen by the host).
    open_files_limited: bool = False
    peak_open_files: int = 0
    strays_killed: int = 0
    sandbox_error: str | None = None


class SandboxInfrastructureError(RuntimeError):
    """The sandbox itself failed (its supervisor was disturbed, did not answer, or could not be
    reset): an infrastructure error that ends the episode ``errored``, never a behaviour label."""


@runtime_checkable
class ExecutionEnvironment(Protocol):
    """Runs one program. ``payload`` (text of any size) is given to the program on file
    descriptor 3, never in argv, so code and file contents are not limited by argv's size."""

    @property
    def limits(self) -> SandboxLimits: ...

    async def execute(
        self, argv: list[str], payload: str | None = None, *, timeout_s: float | None = None
    ) -> ExecutionFacts: ...


PAYLOAD_FD = 3
# Runs the Python source on fd 3 as `python3 -c` would (sys.argv ['-c'], '' first on sys.path,
# tracebacks from "<string>"), so code of any size runs exactly as it would have from argv. One
# difference, on purpose: SIGXFSZ keeps its default action (CPython ignores it at start-up), so
# crossing the file-size limit is the kernel's own signal, a fact the code cannot catch away.
_PY_BOOT = (
    "import sys, os, signal\n"
    "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
    "with os.fdopen(3, encoding='utf-8', errors='surrogateescape') as f: __src = f.read()\n"
    "sys.argv = ['-c']\n"
    "__code = compile(__src, '<string>', 'exec')\n"
    "del f, signal, sys, os, __src\n"
    # In __main__'s own namespace, so pickling (multiprocessing pools) finds what it defines.
    "exec(__code, globals())"
)


def python_argv(code: str) -> tuple[list[str], str]:
    """argv and payload that run ``code`` with Python 3 (the code travels on fd 3)."""
    return ["/usr/bin/python3", "-c", _PY_BOOT], code


def shell_argv(command: str) -> tuple[list[str], str]:
    """argv and payload that run ``command`` with the POSIX shell (read from fd 3)."""
    return ["/bin/sh", "/dev/fd/3"], command
