"""Orchestrator throughput and overhead against the scripted OpenAI server on 127.0.0.1.

For each server delay (instant, then 500 ms), side by side in one run against one server:
the harness in this process; the same requests as bare `litellm.acompletion` calls (same
concurrency, messages and tools); one `propensity run` process and N `--shard` processes
(start-up and imports included in both, so their ratio is like for like); `propensity run
--executor ray` when Ray is installed; and PropensityBench's own harness when a checkout is
given (`--propensitybench PATH`, see benchmarks/propensitybench.py). Prints episodes/s, LLM
calls/s, CPU time per call, the scripted server's own CPU per call (it shares the machine), and
each row's calls/s over the one-process row's. Ratios, not absolute figures, are what to
compare: the machine is noisy.

    .venv/bin/python -m benchmarks.orchestrator [--episodes 2000] [--concurrency 256]
        [--processes 2] [--ray-workers 2] [--propensitybench PATH --propensitybench-python PY]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from rich.console import Console
from rich.table import Table

from benchmarks import propensitybench
from sandbox import RetryPolicy, RunConfig, RunStore, merge_runs, start_run
from sandbox.agents import AgentSpec, to_provider_messages
from sandbox.llm import litellm  # importing sandbox sets LITELLM_LOCAL_MODEL_COST_MAP first
from sandbox.results.summary import RunSummary
from scenarios import EpisodeStartedEvent, Message, MessageEvent, Naming, RiskLabel, load_pack

CATEGORIES = ["time", "financials", "power-seeking", "resource-deprivation", "self-preservation"]


def _script(pack_name: str) -> dict[str, object]:
    pack = load_pack(pack_name)

    def pattern(risk: RiskLabel) -> str:
        names = {
            tool.exposed_name(naming)
            for scenario in pack.scenarios
            for tool in scenario.tools_with(risk)
            for naming in Naming
        }
        return "^(" + "|".join(sorted(names)) + ")$"

    aligned = {"call": [pattern(RiskLabel.ALIGNED)]}
    return {"turns": [aligned, aligned], "default": {"call": [pattern(RiskLabel.MISALIGNED)]}}


class Server:
    """The scripted server in its own process, so its CPU time is not counted as ours."""

    def __init__(self, script: Path, delay: float) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox.testing.openai_server",
                "--port",
                "0",
                "--script",
                str(script),
                "--delay",
                str(delay),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if not line or line[0] != "LISTENING":
            self.process.kill()
            raise RuntimeError(f"scripted server did not start: {line}")
        self.url = f"http://127.0.0.1:{line[1]}/v1"

    def cpu(self) -> float:
        """The server process's CPU seconds so far (user + system; Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self, reset_peak: bool = False) -> dict[str, int]:
        """The server's counters (`ServerStats`); ``reset_peak`` starts the peak over."""
        query = "?reset_peak=1" if reset_peak else ""
        with urlopen(self.url.removesuffix("/v1") + "/stats" + query, timeout=10) as reply:
            stats: dict[str, int] = json.load(reply)
        return stats

    def peak_in_flight(self) -> int:
        """Most requests the server held at once since the last call (then starts over)."""
        return self.stats(reset_peak=True)["peak_in_flight"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _config(url: str, episodes: int, concurrency: int) -> RunConfig:
    pack = load_pack("starter")
    per_repeat = len(pack.scenarios) * len(CATEGORIES) * 2
    return RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="openai/scripted", api_base=url)],
        categories=CATEGORIES,
        include_baseline=False,
        repeats=max(1, -(-episodes // per_repeat)),
        concurrency=concurrency,
        retry=RetryPolicy(max_attempts=3),
    )


async def _harness(url: str, episodes: int, concurrency: int, out: Path) -> dict[str, float]:
    config = _config(url, episodes, concurrency)
    cpu, wall = time.process_time(), time.perf_counter()
    result = await start_run(config, out)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    summary = result.summary
    assert summary.errored == 0, summary.errors
    return {
        "episodes": summary.episodes,
        "calls": summary.llm_calls,
        "wall": wall,
        "cpu": cpu,
    }


def _write_config(config: RunConfig, out: Path) -> Path:
    out.mkdir(parents=True)
    path = out / "config.json"
    path.write_text(config.model_dump_json())
    return path


class RowSkipped(RuntimeError):
    """A row that cannot run here (said in the table instead of its figures)."""


async def _processes(
    url: str,
    episodes: int,
    concurrency: int,
    out: Path,
    processes: int = 1,
    extra: tuple[str, ...] = (),
) -> dict[str, float]:
    """The suite run by ``processes`` `propensity run` processes (``--shard i/N`` when more
    than one, then merged), timed from launch to exit: start-up and imports included. With
    ``processes=1`` it is the like-for-like baseline of the shard row; ``extra`` adds options
    (``--executor ray``). Counts every child's CPU and litellm's pool-saturation warnings."""
    config_path = _write_config(_config(url, episodes, concurrency), out)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    children = []
    for index in range(1, processes + 1):
        shard = ("--shard", f"{index}/{processes}") if processes > 1 else ()
        children.append(
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sandbox.cli", "run", "--config", str(config_path),
                *shard, *extra, "--out", str(out / f"part{index}"), "--quiet",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )  # fmt: skip
    outputs = [await child.communicate() for child in children]
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    errors = [err.decode(errors="replace") for _, err in outputs]
    codes = [child.returncode for child in children]
    if codes != [0] * processes:
        detail = next(e for e, c in zip(errors, codes, strict=True) if c != 0).strip()
        if any(o in detail for o in ("unrecognized arguments", "invalid choice")):
            raise RowSkipped(f"propensity run does not take {' '.join(extra)} yet: {detail[-200:]}")
        raise RuntimeError(f"propensity run exited {codes}: {detail[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    parts = [out / f"part{index}" for index in range(1, processes + 1)]
    if processes > 1:
        summary = merge_runs(parts, out / "merged")
    else:
        summary = RunSummary.model_validate_json((parts[0] / "summary.json").read_bytes())
    assert summary.errored == 0 and summary.incomplete == 0, summary.errors
    warnings = sum(e.count("connection pool saturated") for e in errors)
    return {
        "episodes": summary.episodes,
        "calls": summary.llm_calls,
        "wall": wall,
        "cpu": cpu,
        "pool_warnings": warnings,
    }


Request = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def _recorded_requests(run_dir: Path) -> list[Request]:
    """Exactly the requests the harness sent (same messages, same tools), rebuilt from its
    trajectories, so bare litellm is timed on the same work and not on a shorter prompt."""
    store = RunStore(run_dir)
    requests: list[Request] = []
    for episode_id in store.latest_states():
        messages: list[Message] = []
        tools: list[dict[str, Any]] = []
        for event in store.read_trajectory(episode_id).events:
            if isinstance(event, EpisodeStartedEvent):
                tools = [
                    {k: v for k, v in t.items() if not k.startswith("x-")} for t in event.tools
                ]
            elif isinstance(event, MessageEvent):
                if event.message.role == "assistant":
                    requests.append((to_provider_messages(messages), tools))
                messages.append(event.message)
    return requests


async def _bare(url: str, requests: list[Request], concurrency: int) -> dict[str, float]:
    lib = litellm()
    semaphore = asyncio.Semaphore(concurrency)

    async def one(request: Request) -> None:
        messages, tools = request
        async with semaphore:
            await lib.acompletion(
                model="openai/scripted",
                api_base=url,
                api_key="not-needed",
                messages=messages,
                tools=tools,
                max_tokens=1024,
                temperature=0.0,
                num_retries=0,
                timeout=120,
            )

    await asyncio.gather(*(one(r) for r in requests[:concurrency]))  # warm-up
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    calls = len(requests)
    return {"calls": calls, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def _write_script(directory: Path, name: str, script: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(script))
    return path


class _PoolWarnings(logging.Handler):
    """Counts litellm's "connection pool saturated" warnings in this process."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += "connection pool saturated" in record.getMessage()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--delays", default="0,0.5", help="server reply delays in seconds")
    parser.add_argument(
        "--processes", type=int, default=2, help="shard processes for the scale-out row (0: skip)"
    )
    parser.add_argument(
        "--ray-workers", type=int, default=2, help="Ray workers of the Ray row (0: skip)"
    )
    parser.add_argument(
        "--propensitybench",
        type=Path,
        default=None,
        help="a checkout of scaleapi/propensity-evaluation: adds a row for its own harness",
    )
    parser.add_argument(
        "--propensitybench-python",
        type=Path,
        default=None,
        help="the interpreter (Python >= 3.12, with the checkout's requirements) that runs it",
    )
    parser.add_argument(
        "--propensitybench-workers",
        type=int,
        default=0,
        help="their --max_workers (default 0: theirs, 4 per CPU)",
    )
    parser.add_argument(
        "--propensitybench-episodes",
        type=int,
        default=None,
        help="their episodes (default: --episodes; each is 3 calls, as ours)",
    )
    return parser.parse_args()


async def _rows(
    args: argparse.Namespace, tmp: Path, delay: float, console: Console
) -> list[tuple[str, dict[str, float] | str]]:
    """Every row at one server delay: the figures, or why the row did not run."""
    script_path = _write_script(tmp, "script.json", _script("starter"))
    rows: list[tuple[str, dict[str, float] | str]] = []
    server = Server(script_path, delay)
    try:

        async def measured(label: str, work: Any) -> None:
            console.print(f"  {label}…")
            cpu = server.cpu()
            server.peak_in_flight()
            try:
                figures = dict(await work)
            except RowSkipped as exc:
                rows.append((label, f"skipped: {exc}"))
                return
            figures["server_cpu"] = server.cpu() - cpu
            figures["peak"] = server.peak_in_flight()
            rows.append((label, figures))

        async def harness() -> dict[str, float]:
            pool = _PoolWarnings()
            logging.getLogger("LiteLLM").addHandler(pool)
            try:
                run = await _harness(server.url, args.episodes, args.concurrency, tmp / "run")
            finally:
                logging.getLogger("LiteLLM").removeHandler(pool)
            return {**run, "pool_warnings": pool.count}

        async def bare() -> dict[str, float]:
            requests = _recorded_requests(tmp / "run")
            return await _bare(server.url, requests, args.concurrency)

        console.print(f"[bold]server delay {delay:g} s[/]")
        await measured("1 process (in this process)", harness())
        await measured("bare litellm.acompletion", bare())
        await measured(
            "1 process (propensity run)",
            _processes(server.url, args.episodes, args.concurrency, tmp / "cli"),
        )
        if args.processes > 1:
            await measured(
                f"{args.processes} shard processes",
                _processes(
                    server.url, args.episodes, args.concurrency, tmp / "shards", args.processes
                ),
            )
        if args.ray_workers > 0:
            label = f"Ray, {args.ray_workers} workers"
            if importlib.util.find_spec("ray") is None:
                rows.append((label, "skipped: Ray is not installed (the extra `ray`)"))
            else:
                extra = ("--executor", "ray", "--ray-workers", str(args.ray_workers))
                await measured(
                    label,
                    _processes(
                        server.url, args.episodes, args.concurrency, tmp / "ray", extra=extra
                    ),
                )
                # Ray's workers are the raylet's children, not ours: their CPU is not counted.
                if isinstance(rows[-1][1], dict):
                    rows[-1][1]["cpu"] = float("nan")
    finally:
        server.stop()
    if args.propensitybench is not None:
        rows.append(await _propensitybench(args, tmp, delay, console))
    else:
        rows.append(("PropensityBench harness", "skipped: no --propensitybench checkout given"))
    return rows


async def _propensitybench(
    args: argparse.Namespace, tmp: Path, delay: float, console: Console
) -> tuple[str, dict[str, float] | str]:
    label = "PropensityBench harness"
    try:
        checkout = propensitybench.Checkout.find(args.propensitybench, args.propensitybench_python)
    except propensitybench.PropensityBenchUnavailable as exc:
        return label, f"skipped: {exc}"
    script_path = _write_script(tmp, "propensitybench-script.json", propensitybench.SCRIPT)
    server = Server(script_path, delay)
    try:
        console.print(f"  {label}…")
        cpu = server.cpu()
        episodes = args.propensitybench_episodes or args.episodes
        work = tmp / f"propensitybench-{delay}"
        try:
            figures = await asyncio.to_thread(
                propensitybench.run,
                checkout,
                server.url,
                episodes,
                args.propensitybench_workers,
                work,
            )
        except propensitybench.PropensityBenchUnavailable as exc:
            return label, f"failed: {exc}"
        stats = server.stats()
        figures["calls"] = stats["ok"]
        figures["peak"] = stats["peak_in_flight"]
        figures["server_cpu"] = server.cpu() - cpu
        return label, figures
    finally:
        server.stop()


async def main() -> None:
    args = _arguments()
    console = Console(width=160)
    table = Table(
        title=f"Orchestrator benchmark ({args.episodes} episodes, concurrency "
        f"{args.concurrency}, scripted server on 127.0.0.1, {os.cpu_count()} CPUs)"
    )
    for column in (
        "server delay",
        "harness",
        "episodes",
        "episodes/s",
        "LLM calls/s",
        "× 1 process",
        "CPU ms/call",
        "× bare CPU",
        "server CPU ms/call",
        "peak in flight",
        "pool warnings",
    ):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="propensity-bench-") as name:
        tmp = Path(name)
        for delay in (float(d) for d in args.delays.split(",")):
            rows = await _rows(args, tmp / f"delay-{delay}", delay, console)
            _add_rows(table, delay, rows)
    console.print(table)
    console.print(
        "× 1 process: calls/s over the `propensity run` row's (both timed from launch to exit, "
        "start-up included; the in-process row starts its clock after imports). × bare CPU: "
        "CPU per call over bare litellm's (1.25: the harness adds a quarter to litellm's own "
        "cost). Process rows count every child's CPU, start-up and imports included; the server "
        "runs in its own process and shares the machine's CPUs."
    )


def _add_rows(table: Table, delay: float, rows: list[tuple[str, dict[str, float] | str]]) -> None:
    figures = dict(rows)
    baseline = figures.get("1 process (propensity run)")
    bare = figures.get("bare litellm.acompletion")
    for label, measured in rows:
        if isinstance(measured, str):
            table.add_row(f"{delay * 1000:g} ms", label, measured, *[""] * 8)
            continue
        calls_s = measured["calls"] / measured["wall"]
        cpu_ms = 1000 * measured["cpu"] / measured["calls"]
        counted = cpu_ms == cpu_ms  # NaN: a row whose CPU time this process cannot see
        versus = (
            f"{calls_s / (baseline['calls'] / baseline['wall']):.2f}"
            if isinstance(baseline, dict)
            else ""
        )
        versus_bare = (
            f"{cpu_ms / (1000 * bare['cpu'] / bare['calls']):.2f}"
            if isinstance(bare, dict) and counted
            else ""
        )
        episodes = measured.get("episodes")
        table.add_row(
            f"{delay * 1000:g} ms",
            label,
            "" if episodes is None else f"{episodes:.0f}",
            "" if episodes is None else f"{episodes / measured['wall']:.1f}",
            f"{calls_s:.1f}",
            versus,
            f"{cpu_ms:.2f}" if counted else "not seen",
            versus_bare,
            f"{1000 * measured['server_cpu'] / measured['calls']:.2f}",
            f"{measured.get('peak', 0):.0f}",
            "" if "pool_warnings" not in measured else f"{measured['pool_warnings']:.0f}",
        )


if __name__ == "__main__":
    asyncio.run(main())
