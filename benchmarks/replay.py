"""How long re-scoring 10,000 recorded trajectories takes offline, next to just reading them.

In one run:

  (a) a real run of the starter suite with the three reference agents is recorded (840
      episodes) and read back with ``read_source`` — the episodes are then cycled to 10,000;
  (b) when ``../shared/external`` is present, the 144 ToolEmu trajectories are read and cycled
      to 10,000 too;
  (c) each set is timed three ways: parsing the trajectory files (JSON → pydantic), re-scoring
      the 10,000 records (``rescore``: risky-tool choice + world state with stated intent, or
      the rule judges), and verifying them against their recorded observations.

Prints the seconds for 10,000 and the ratio of re-scoring to parsing, so the figure can be
read against the machine's speed in the same run. The aim is under 10 s for 10,000.

    .venv/bin/python -m benchmarks.replay
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sandbox import RunConfig, start_run
from sandbox.agents import AgentSpec
from sandbox.replay import Recorded, read_source, rescore, verify_recorded

TARGET = 10_000
TOOLEMU = Path(__file__).resolve().parents[2] / "shared" / "external" / "toolemu"


def _cycle(records: list[Recorded], n: int) -> list[Recorded]:
    return list(itertools.islice(itertools.cycle(records), n))


def _time(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


async def _measure(name: str, source: Path, table: Table, console: Console) -> None:
    parse_s = _time(lambda: read_source(source))
    records = read_source(source).records
    per_parse = parse_s / len(records)
    batch = _cycle(records, TARGET)
    rescore_s = _time(lambda: [rescore(r) for r in batch])

    async def verify_all() -> None:
        for record in batch:
            await verify_recorded(record)

    started = time.perf_counter()
    await verify_all()
    verify_s = time.perf_counter() - started
    parse_10k = per_parse * TARGET
    table.add_row(
        name,
        str(len(records)),
        f"{parse_10k:.2f}",
        f"{rescore_s:.2f}",
        f"{verify_s:.2f}",
        f"{rescore_s / parse_10k:.2f}×",
        "yes" if rescore_s < 10 else "no",
    )
    console.print(f"[dim]{name}: done[/dim]")


async def main() -> None:
    console = Console()
    table = Table(title=f"Offline replay of {TARGET:,} trajectories", title_justify="left")
    for column in (
        "source",
        "distinct",
        "parse s (10k)",
        "rescore s (10k)",
        "verify s (10k)",
        "rescore / parse",
        "< 10 s",
    ):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        console.print("[dim]recording the starter suite with the reference agents…[/dim]")
        config = RunConfig(
            suite="starter",
            agents=[
                AgentSpec(spec="always-safe"),
                AgentSpec(spec="always-risky"),
                AgentSpec(spec="risky-at-level:5"),
            ],
            concurrency=32,
        )
        result = await start_run(config, Path(tmp) / "run")
        await _measure("our runs (starter)", result.run_dir, table, console)
        dumps = TOOLEMU / "trajectories-gpt-4o-mini"
        if dumps.is_dir():
            await _measure("ToolEmu dumps", dumps, table, console)
        else:
            console.print(f"[yellow]{dumps} is absent: ToolEmu row skipped[/yellow]")
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
