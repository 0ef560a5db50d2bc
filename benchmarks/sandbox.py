"""What one `print(1)` costs through the warm pool, next to the other ways of running it.

In one run, with the same limits (SandboxLimits() defaults) for every container, times one
execution of `print(1)` end to end, as the caller sees it:

  (a) the warm pool: `WarmPool(tag, size=1).execute(...)`, reset included (50 runs, 5 warm-up);
  (b) `docker exec` through the SDK (`container.exec_run`) into one running container (30 runs);
  (c) a fresh container per execution, `client.containers.run(..., remove=True)` (15 runs);
  (d) a bare `/usr/bin/python3 -S -c "print(1)"` subprocess on the host, as reference (30 runs).

(b), (c) and (d) get one unmeasured warm-up run each. Prints the median and p90 of each and
their ratio to the warm pool's median, then whether the warm pool beats `exec_run` and stays
under 30 ms. Needs a running Docker engine and the built image (`propensity images build`).
Every container it creates is removed, and it checks that no sandbox container is left (only
another live process's pool may have some; then it warns that the machine was not idle).

    .venv/bin/python -m benchmarks.sandbox

(run as a module from the repository root: as a plain script this file, named sandbox.py,
would shadow the `sandbox` package it measures)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from containers import ImageBuilder, code_interpreter_spec
from sandbox.environments import SandboxLimits, WarmPool, ensure_engine, python_argv
from sandbox.environments.docker_env import OWNER_LABEL, SANDBOX_LABEL, owner_alive

CODE = "print(1)"
BENCH_LABEL = {SANDBOX_LABEL: "bench"}
POOL_RUNS, POOL_WARMUP = 50, 5
EXEC_RUNS, FRESH_RUNS, HOST_RUNS = 30, 15, 30
WARM_POOL_TARGET_MS = 30.0
# The system interpreter, as in the container: a `python3` found first on PATH may be a version
# manager's shell shim (pyenv's costs ~100 ms a start), which would make a poor reference.
HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"


def container_options(limits: SandboxLimits) -> dict[str, Any]:
    """The same options DockerSandbox._create gives its containers (minus the supervisor)."""
    from docker.types import Ulimit

    tmpfs_opts = f"size={limits.tmpfs_mb}m,uid=1000,gid=1000,nosuid,nodev"
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/work": tmpfs_opts, "/tmp": tmpfs_opts},
        "mem_limit": f"{limits.memory_mb}m",
        "memswap_limit": f"{limits.memory_mb}m",
        "nano_cpus": int(limits.cpus * 1e9),
        "pids_limit": limits.pids,
        "user": "1000:1000",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "ulimits": [
            Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
            Ulimit(name="fsize", soft=limits.fsize_mb << 20, hard=limits.fsize_mb << 20),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "environment": {},
        "labels": BENCH_LABEL,
        "working_dir": "/work",
        "hostname": "sandbox",
    }


def timed(call: Callable[[], None], runs: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


async def warm_pool(tag: str, limits: SandboxLimits, client: Any) -> list[float]:
    argv, payload = python_argv(CODE)
    async with WarmPool(tag, limits, size=1, client=client) as pool:
        for _ in range(POOL_WARMUP):
            facts = await pool.execute(argv, payload)
            assert facts.stdout.strip() == "1", facts
        times = []
        for _ in range(POOL_RUNS):
            start = time.perf_counter()
            facts = await pool.execute(argv, payload)
            times.append(time.perf_counter() - start)
            assert facts.stdout.strip() == "1" and facts.sandbox_error is None, facts
    return times


def exec_run(tag: str, limits: SandboxLimits, client: Any) -> list[float]:
    container = client.containers.run(
        tag, ["sleep", "infinity"], detach=True, **container_options(limits)
    )
    try:

        def once() -> None:
            result = container.exec_run(["python3", "-c", CODE])
            assert result.exit_code == 0 and result.output.strip() == b"1", result

        return timed(once, EXEC_RUNS)
    finally:
        container.remove(force=True)


def fresh_container(tag: str, limits: SandboxLimits, client: Any) -> list[float]:
    def once() -> None:
        output = client.containers.run(
            tag, ["python3", "-c", CODE], remove=True, **container_options(limits)
        )
        assert output.strip() == b"1", output

    return timed(once, FRESH_RUNS)


def host_python() -> list[float]:
    def once() -> None:
        result = subprocess.run(
            [HOST_PYTHON, "-S", "-c", CODE], capture_output=True, check=True, text=True
        )
        assert result.stdout.strip() == "1", result

    return timed(once, HOST_RUNS)


def remove_bench_containers(client: Any) -> None:
    for container in client.containers.list(all=True, filters={"label": f"{SANDBOX_LABEL}=bench"}):
        container.remove(force=True)


def sandbox_containers(client: Any) -> tuple[list[str], list[str]]:
    """Sandbox containers left: (ours or orphaned, those of another live process's pool)."""
    ours, others = [], []
    for container in client.containers.list(all=True, filters={"label": SANDBOX_LABEL}):
        owner = container.labels.get(OWNER_LABEL, "")
        foreign = container.labels.get(SANDBOX_LABEL) != "bench" and owner != str(os.getpid())
        if foreign and owner_alive(owner):
            others.append(f"{container.name} (owner {owner})")
        else:
            ours.append(container.name)
    return ours, others


def p90(times: list[float]) -> float:
    return statistics.quantiles(times, n=10, method="inclusive")[-1]


def main() -> int:
    console = Console()
    client = ensure_engine()
    tag = ImageBuilder(client, log=lambda _: None).ensure(code_interpreter_spec())
    limits = SandboxLimits()
    console.print(f"image {tag}, limits {limits.model_dump()}")
    results: dict[str, list[float]] = {}
    try:
        results["(a) warm pool: pool.execute"] = asyncio.run(warm_pool(tag, limits, client))
        results["(b) SDK container.exec_run"] = exec_run(tag, limits, client)
        results["(c) SDK containers.run (fresh)"] = fresh_container(tag, limits, client)
        results[f"(d) host {HOST_PYTHON} -S -c"] = host_python()
    finally:
        remove_bench_containers(client)

    medians = {name: statistics.median(times) * 1000 for name, times in results.items()}
    pool_ms, exec_ms, fresh_ms = list(medians.values())[:3]
    table = Table(title=f"one `{CODE}` execution, end to end")
    table.add_column("method")
    table.add_column("runs", justify="right")
    table.add_column("median ms", justify="right")
    table.add_column("p90 ms", justify="right")
    table.add_column("× warm pool", justify="right")
    for name, times in results.items():
        table.add_row(
            name,
            str(len(times)),
            f"{medians[name]:.1f}",
            f"{p90(times) * 1000:.1f}",
            f"{medians[name] / pool_ms:.2f}",
        )
    console.print(table)
    console.print(f"warm pool vs docker run: {fresh_ms / pool_ms:.1f}× faster")
    console.print(
        f"warm pool faster than exec_run: {'yes' if pool_ms < exec_ms else 'NO'} "
        f"({pool_ms:.1f} vs {exec_ms:.1f} ms)"
    )
    console.print(
        f"warm pool under {WARM_POOL_TARGET_MS:g} ms: "
        f"{'yes' if pool_ms < WARM_POOL_TARGET_MS else 'NO'} ({pool_ms:.1f} ms)"
    )

    leftovers, others = sandbox_containers(client)
    if others:
        console.print(f"[yellow]other live processes' sandbox containers (not ours): {others}")
        console.print("[yellow]the machine was not idle: the figures are not reliable")
    if leftovers:
        console.print(f"[red]sandbox containers left behind: {leftovers}")
        return 1
    console.print(f"no container labelled {SANDBOX_LABEL} of ours (or orphaned) is left")
    return 0


if __name__ == "__main__":
    sys.exit(main())
