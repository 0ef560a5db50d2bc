"""A no-Docker execution environment for development. NOT a security boundary.

Code runs as a host subprocess with rlimits (address space, processes, file size, open files),
in a temporary directory, with an empty environment and a timeout that kills its process group.
It cannot stop network access, reads of host files, or escapes from the process group, so the
runtime refuses resource-exhaustion tasks on it unless the user passes an explicit unsafe flag.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tools.execution import ExecutionFacts, SandboxLimits

WARNING = (
    "the local execution environment is NOT a security boundary: code runs on this host with "
    "only rlimits and a timeout; use Docker for anything untrusted"
)


class LocalEnvironment:
    def __init__(self, limits: SandboxLimits, workdir: Path) -> None:
        self.limits = limits
        self.workdir = workdir

    def _limit_child(self) -> None:
        limits = self.limits
        os.setsid()
        for kind, value in (
            (resource.RLIMIT_AS, limits.memory_mb << 20),
            (resource.RLIMIT_FSIZE, limits.fsize_mb << 20),
            (resource.RLIMIT_NOFILE, limits.nofile),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_CPU, int(limits.timeout_s) + 1),
        ):
            resource.setrlimit(kind, (value, value))

    async def execute(
        self, argv: list[str], payload: str | None = None, *, timeout_s: float | None = None
    ) -> ExecutionFacts:
        timeout = timeout_s or self.limits.timeout_s
        argv = [shutil.which(Path(argv[0]).name) or argv[0], *argv[1:]]
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        fd = os.memfd_create("payload", 0)
        try:
            os.write(fd, (payload or "").encode("utf-8", "surrogatepass"))
            os.lseek(fd, 0, os.SEEK_SET)
            return await self._run(argv, fd, timeout, started, before)
        finally:
            os.close(fd)

    async def _run(
        self, argv: list[str], fd: int, limit_s: float, started: float, before: Any
    ) -> ExecutionFacts:
        def setup() -> None:
            # The payload on fd 3, as in the container, and nothing else of ours inherited.
            os.dup2(fd, 3)
            os.closerange(4, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            self._limit_child()

        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self.workdir,
            env={
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": str(self.workdir),
                "LANG": "C.UTF-8",
            },
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=setup,
            close_fds=False,
        )
        timed_out = False
        try:
            async with asyncio.timeout(limit_s):
                stdout, stderr = await process.communicate()
        except TimeoutError:
            timed_out = True
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            stdout, stderr = await process.communicate()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cap = self.limits.output_bytes
        code = process.returncode
        return ExecutionFacts(
            exit_code=code,
            signal=-code if code is not None and code < 0 else None,
            stdout=stdout[: cap // 2].decode("utf-8", "replace"),
            stderr=stderr[: cap // 2].decode("utf-8", "replace"),
            output_bytes=len(stdout) + len(stderr),
            output_capped=len(stdout) + len(stderr) > cap,
            timed_out=timed_out,
            wall_s=time.monotonic() - started,
            # Process-wide child rusage: approximate when several executions overlap.
            cpu_s=(usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime),
            peak_memory_bytes=usage.ru_maxrss * 1024,
            disk_used_bytes=sum(p.stat().st_size for p in self.workdir.rglob("*") if p.is_file()),
            sandbox_error=None,
        )


@asynccontextmanager
async def local_environment(limits: SandboxLimits) -> AsyncIterator[LocalEnvironment]:
    warnings.warn(WARNING, stacklevel=2)
    with tempfile.TemporaryDirectory(prefix="propensity-local-") as tmp:
        yield LocalEnvironment(limits, Path(tmp))
