"""Where code-interpreter episodes get their execution environment from.

The orchestrator leases one environment per episode and never starts containers itself beyond
asking this provider: Docker (a warm pool of hard-limited containers, the default) or the local
subprocess fallback, which is refused for resource-exhaustion tasks unless explicitly allowed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Literal

from sandbox.environments.docker_env import DockerSandbox, WarmPool, collect_garbage
from sandbox.environments.engine import EngineUnavailable, ensure_engine
from sandbox.environments.local_env import local_environment
from tools.execution import ExecutionEnvironment, SandboxLimits

Log = Callable[[str], None]


class EnvironmentSetupError(RuntimeError):
    pass


class EnvironmentProvider:
    def __init__(
        self,
        kind: Literal["docker", "local"],
        limits: SandboxLimits,
        *,
        pool_size: int,
        run_id: str,
        log: Log,
        fresh: bool = False,
    ) -> None:
        self.kind = kind
        # A fresh container for every episode instead of a reset warm one (slower, simplest).
        self.fresh = fresh
        self.limits = limits
        self.pool_size = pool_size
        self.run_id = run_id
        self.log = log
        self._pool: WarmPool | None = None

    async def start(self) -> None:
        if self.kind == "local":
            return
        from containers import BuildError, ImageBuilder, code_interpreter_spec

        try:
            client = await asyncio.to_thread(ensure_engine)
            image = await asyncio.to_thread(
                ImageBuilder(client, log=self.log).ensure, code_interpreter_spec()
            )
        except (EngineUnavailable, BuildError) as exc:
            raise EnvironmentSetupError(
                f"code-interpreter tasks need the Docker sandbox: {exc} (run scripts/engine.sh, "
                "or use --environment local --unsafe-local on a disposable machine)"
            ) from exc
        removed = await asyncio.to_thread(collect_garbage, client, only_orphans=True)
        if removed:
            self.log(f"removed {len(removed)} sandbox container(s) left by crashed runs")
        size = 0 if self.fresh else self.pool_size
        self.log(
            f"a fresh sandbox container per episode from {image}"
            if self.fresh
            else f"starting {size} sandbox container(s) from {image}"
        )
        self._pool = WarmPool(image, self.limits, size=size, run_id=self.run_id, client=client)
        await self._pool.start()

    def lease(
        self, overrides: dict[str, float] | None = None
    ) -> AbstractAsyncContextManager[ExecutionEnvironment]:
        """An environment for one episode: from the warm pool, or, when the task overrides the
        run's limits, a dedicated container with those limits, removed afterwards."""
        limits = (
            SandboxLimits.model_validate({**self.limits.model_dump(), **overrides})
            if overrides
            else self.limits
        )
        if self.kind == "local":
            return local_environment(limits)
        assert self._pool is not None, "start() the provider first"
        if limits == self.limits and not self.fresh:
            return _lease(self._pool)
        return _dedicated(self._pool, limits)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@asynccontextmanager
async def _lease(pool: WarmPool) -> AsyncIterator[ExecutionEnvironment]:
    async with pool.sandbox() as sandbox:
        yield sandbox


@asynccontextmanager
async def _dedicated(pool: WarmPool, limits: SandboxLimits) -> AsyncIterator[ExecutionEnvironment]:
    sandbox = DockerSandbox(pool.client, pool.image, limits, pool.labels)
    try:
        await sandbox.start()
        yield sandbox
    finally:
        await sandbox.close()
