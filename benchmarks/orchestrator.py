"""Orchestrator throughput and overhead against the scripted OpenAI server on 127.0.0.1.

Runs 2,000 episodes twice (server answering instantly, then after 500 ms) and, in the same
process and run, the same number of bare `litellm.acompletion` calls with the same concurrency,
messages and tools. Prints episodes/s, LLM calls/s and CPU time per LLM call of the harness next
to bare litellm's, and their ratio. Ratios, not absolute figures, are what to compare: the
machine is noisy.

    .venv/bin/python -m benchmarks.orchestrator [--episodes 2000] [--concurrency 256]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sandbox import RetryPolicy, RunConfig, RunStore, merge_runs, start_run
from sandbox.agents import AgentSpec, to_provider_messages
from sandbox.llm import litellm  # importing sandbox sets LITELLM_LOCAL_MODEL_COST_MAP first
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


async def _sharded(
    url: str, episodes: int, concurrency: int, processes: int, out: Path
) -> dict[str, float]:
    """The same suite split with `--shard i/N` over N `propensity run` processes, then merged:
    how one machine goes past a single event loop's CPU ceiling."""
    config_path = _write_config(_config(url, episodes, concurrency), out)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox.cli",
            "run",
            "--config",
            str(config_path),
            "--shard",
            f"{index}/{processes}",
            "--out",
            str(out / f"shard{index}"),
            "--quiet",
            stdout=subprocess.DEVNULL,
        )
        for index in range(1, processes + 1)
    ]
    codes = [await child.wait() for child in children]
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert codes == [0] * processes, codes
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    parts = [out / f"shard{index}" for index in range(1, processes + 1)]
    summary = merge_runs(parts, out / "merged")
    assert summary.errored == 0 and summary.incomplete == 0, summary.errors
    return {"episodes": summary.episodes, "calls": summary.llm_calls, "wall": wall, "cpu": cpu}


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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--delays", default="0,0.5", help="server reply delays in seconds")
    parser.add_argument(
        "--processes", type=int, default=2, help="shard processes for the scale-out row (0: skip)"
    )
    args = parser.parse_args()
    console = Console(width=120)
    table = Table(
        title=f"Orchestrator benchmark ({args.episodes} episodes, concurrency "
        f"{args.concurrency}, scripted server on 127.0.0.1)"
    )
    for column in (
        "server delay",
        "harness",
        "episodes/s",
        "LLM calls/s",
        "harness CPU ms/call",
        "bare litellm CPU ms/call",
        "harness / bare",
        "bare calls/s",
    ):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory(prefix="propensity-bench-") as tmp:
        script_path = Path(tmp) / "script.json"
        script_path.write_text(json.dumps(_script("starter")))
        for delay in (float(d) for d in args.delays.split(",")):
            server = Server(script_path, delay)
            try:
                console.print(f"[bold]server delay {delay:g} s[/]: harness run…")
                run = await _harness(
                    server.url, args.episodes, args.concurrency, Path(tmp) / f"run-{delay}"
                )
                requests = _recorded_requests(Path(tmp) / f"run-{delay}")
                assert len(requests) == run["calls"], (len(requests), run["calls"])
                console.print(f"  bare litellm.acompletion × {len(requests)} (same requests)…")
                bare = await _bare(server.url, requests, args.concurrency)
                sharded = None
                if args.processes > 1:
                    console.print(f"  {args.processes} shard processes + merge…")
                    sharded = await _sharded(
                        server.url,
                        args.episodes,
                        args.concurrency,
                        args.processes,
                        Path(tmp) / f"sharded-{delay}",
                    )
            finally:
                server.stop()
            bare_ms = 1000 * bare["cpu"] / bare["calls"]
            rows = [("1 process", run)]
            if sharded is not None:
                rows.append((f"{args.processes} processes", sharded))
            for label, measured in rows:
                harness_ms = 1000 * measured["cpu"] / measured["calls"]
                table.add_row(
                    f"{delay * 1000:g} ms",
                    label,
                    f"{measured['episodes'] / measured['wall']:.1f}",
                    f"{measured['calls'] / measured['wall']:.1f}",
                    f"{harness_ms:.2f}",
                    f"{bare_ms:.2f}",
                    f"{harness_ms / bare_ms:.2f}",
                    f"{bare['calls'] / bare['wall']:.1f}",
                )
    console.print(table)
    console.print(
        "harness / bare: the harness's whole CPU time per LLM call (litellm included) divided by "
        "bare litellm's; 1.25 means the harness adds a quarter to litellm's own cost. The "
        "multi-process row counts every child's CPU, process start-up and imports included."
    )


if __name__ == "__main__":
    asyncio.run(main())
