"""Every code block CIRCLE models wrote, run for real in the sandbox: the limits must hold.

The material (../shared/external/circle/model-code-dev.jsonl) is what models answered to
resource-exhaustion prompts: blocks that loop for minutes, allocate until failure, fill the disk
or fork. Each block runs in a clean sandbox of a four-container warm pool, four at a time, with
a 5 s timeout and 256 MiB of memory. Every execution must end with measured facts and a label,
the host must get its memory and disk back, and no container may be left behind. A summary goes
to test-artifacts/circle-outcomes.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from evaluators.code_execution import classify_execution
from sandbox.environments import (
    ExecutionFacts,
    SandboxLimits,
    WarmPool,
    python_argv,
)
from sandbox.environments.docker_env import OWNER_LABEL, SANDBOX_LABEL, owner_alive

pytestmark = [pytest.mark.slow, pytest.mark.external]

REPO_ROOT = Path(__file__).resolve().parents[3]
MATERIAL = (
    Path(__file__).resolve().parents[4] / "shared" / "external" / "circle" / "model-code-dev.jsonl"
)
ARTIFACT = REPO_ROOT / "test-artifacts" / "circle-outcomes.json"
CONCURRENCY = 4
LIMITS = SandboxLimits(memory_mb=256, timeout_s=5.0)
# How long past its timeout an execution may take (supervisor kill, reap and reply).
WALL_SLACK_S = 3.0
MEMORY_TOLERANCE = 512 << 20
DISK_TOLERANCE = 256 << 20
DOCKER_ROOT = Path("/var/lib/docker")


def _blocks() -> list[tuple[str, str, int, str]]:
    """(line id, model, index of the block in its line, source) for every block of every line."""
    blocks = []
    with MATERIAL.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            for index, code in enumerate(row["code_blocks"]):
                blocks.append((str(row["id"]), str(row["model"]), index, str(code)))
    return blocks


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "MemAvailable":
            return int(value.split()[0]) * 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


def _host_resources() -> dict[str, int]:
    resources = {"mem_available": _mem_available(), "disk_free:/": shutil.disk_usage("/").free}
    if DOCKER_ROOT.exists():
        resources[f"disk_free:{DOCKER_ROOT}"] = shutil.disk_usage(DOCKER_ROOT).free
    return resources


def _check_facts(facts: ExecutionFacts) -> list[str]:
    problems = []
    if facts.sandbox_error is not None:
        problems.append(f"sandbox_error={facts.sandbox_error!r}")
    if not facts.wall_s > 0:
        problems.append(f"wall_s={facts.wall_s}")
    if not facts.cpu_s >= 0:
        problems.append(f"cpu_s={facts.cpu_s}")
    if not facts.wall_s < LIMITS.timeout_s + WALL_SLACK_S:
        problems.append(f"wall_s={facts.wall_s:.2f} past timeout + {WALL_SLACK_S:g} s")
    return problems


async def test_every_circle_code_block_is_contained(sandbox_image: str, docker_engine: Any) -> None:
    blocks = _blocks()
    assert len(blocks) >= 200, f"{MATERIAL} holds only {len(blocks)} code blocks"
    client = docker_engine
    before = _host_resources()
    started = time.monotonic()
    records: list[dict[str, Any]] = []
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async with WarmPool(sandbox_image, LIMITS, size=CONCURRENCY, client=client) as pool:

        async def run(line_id: str, model: str, index: int, code: str) -> None:
            async with semaphore, pool.sandbox() as sandbox:
                facts = await sandbox.execute(*python_argv(code))
            verdict = classify_execution(facts, LIMITS)
            records.append(
                {
                    "id": line_id,
                    "model": model,
                    "block": index,
                    "label": verdict.outcome.value,
                    "reason": verdict.reason,
                    "problems": _check_facts(facts),
                    "exit_code": facts.exit_code,
                    "signal": facts.signal,
                    "wall_s": round(facts.wall_s, 4),
                    "cpu_s": round(facts.cpu_s, 4),
                    "peak_memory_bytes": facts.peak_memory_bytes,
                    "disk_used_bytes": facts.disk_used_bytes,
                    "peak_pids": facts.peak_pids,
                    "output_bytes": facts.output_bytes,
                    "stdout_chars": len(facts.stdout),
                    "stderr_chars": len(facts.stderr),
                    "stderr_tail": facts.stderr[-300:],
                }
            )

        await asyncio.gather(*(run(*block) for block in blocks))
        run_label = pool.labels["propensity.run"]

    duration = time.monotonic() - started
    after = _host_resources()
    # Every sandbox container must be gone, except those of another live process's pool (a
    # second test session on the same engine): they cannot be this pool's.
    leftovers, others = [], []
    for container in client.containers.list(all=True, filters={"label": SANDBOX_LABEL}):
        owner = container.labels.get(OWNER_LABEL, "")
        if owner != str(os.getpid()) and owner_alive(owner):
            others.append(container.name)
        else:
            leftovers.append(container.name)

    labels = Counter(record["label"] for record in records)
    per_model: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        per_model[record["model"]][record["label"]] += 1
    failures = [record for record in records if record["problems"]]
    slowest = sorted(records, key=lambda record: -float(record["wall_s"]))[:5]
    summary = {
        "material": str(MATERIAL),
        "limits": LIMITS.model_dump(),
        "concurrency": CONCURRENCY,
        "run": run_label,
        "blocks": len(records),
        "duration_s": round(duration, 1),
        "labels": dict(labels.most_common()),
        "per_model": {model: dict(counts.most_common()) for model, counts in per_model.items()},
        "host_before": before,
        "host_after": after,
        "leftover_containers": leftovers,
        "other_sessions_containers": others,
        "failures": failures,
        "executions": sorted(records, key=lambda r: (r["id"], r["block"])),
    }
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")

    print(f"\nCIRCLE: {len(records)} blocks in {duration:.1f} s, {CONCURRENCY} at a time")
    print("labels: " + ", ".join(f"{label} {count}" for label, count in labels.most_common()))
    for model, counts in sorted(per_model.items()):
        print(f"  {model}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    deltas = {key: (after[key] - before[key]) / (1 << 20) for key in before}
    print("host change (MiB): " + ", ".join(f"{k} {v:+.0f}" for k, v in deltas.items()))
    print("slowest: " + ", ".join(f"{r['id']}#{r['block']} {r['wall_s']:.2f}s" for r in slowest))
    if others:
        print(f"other live sessions' sandbox containers (ignored): {others}")
    print(f"summary: {ARTIFACT}")

    assert len(records) == len(blocks)
    assert not failures, f"{len(failures)} executions without clean facts: {failures[:5]}"
    assert all(record["label"] for record in records)
    for key in before:
        change = after[key] - before[key]
        tolerance = MEMORY_TOLERANCE if key == "mem_available" else DISK_TOLERANCE
        assert abs(change) < tolerance, f"host {key} changed by {change / (1 << 20):+.0f} MiB"
    assert not leftovers, f"sandbox containers left behind: {leftovers}"
