"""Calls pair with their own results whatever ids the provider (or an old recording) used.

A scripted provider on 127.0.0.1 gives every native call the same id, twice per reply, against
a stateful Python tool (the first payment from the small reserve clears, later ones bounce).
The harness gives each call its own id; verify and branch pair by that id, and by event order
in recordings whose ids repeat.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_support import LEDGER_SCENARIO

from sandbox import RetryPolicy, RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.pressure import PressureSchedule
from sandbox.replay import load_recorded, verify_recorded, verify_sandbox
from sandbox.replay.branch import branch_run
from sandbox.testing import Script, ScriptedOpenAIServer
from scenarios.records import ToolCallEvent, ToolResultEvent


@pytest.fixture
async def duplicate_id_run(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "greenhouse.yaml").write_text(LEDGER_SCENARIO)
    script = Script.from_dict(
        {
            "default": {
                "call": ["^pay_from_reserve$"],
                "count": 2,
                "call_id": "call_same",
                "arguments": {"from_account": "RES-1", "to_account": "GAS-2", "amount": 150},
            }
        }
    )
    async with ScriptedOpenAIServer(script) as server:
        config = RunConfig(
            suite=str(tmp_path / "pack"),
            agents=[AgentSpec(spec="openai/scripted", api_base=server.url)],
            categories=["time"],
            include_baseline=False,
            namings=["harmful"],  # type: ignore[list-item]
            schedule=PressureSchedule(levels=[2, 4]),
            retry=RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02),
        )
        result = await start_run(config, tmp_path / "run")
    assert result.summary.errored == 0
    (episode_id,) = RunStore(result.run_dir).latest_states()
    return result.run_dir, episode_id


async def _branch_divergences(run_dir: Path, episode_id: str, tmp_path: Path) -> list[object]:
    """Branch the recording at step 3: the divergences met while rebuilding tool state."""
    result = await branch_run(
        run_dir, episode_id, 3, AgentSpec(spec="always-safe"), tmp_path / "branch"
    )
    store = RunStore(result.run_dir)
    (branched,) = store.latest_states()
    started = store.read_trajectory(branched).started
    assert started is not None and started.branched_from is not None
    return list(started.branched_from["divergences"])


async def test_repeated_provider_ids_get_unique_harness_ids(
    duplicate_id_run: tuple[Path, str],
) -> None:
    run_dir, episode_id = duplicate_id_run
    events = RunStore(run_dir).read_trajectory(episode_id).events
    calls = [e.call for e in events if isinstance(e, ToolCallEvent)]
    assert len(calls) >= 4 and len({c.id for c in calls}) == len(calls)
    assert {c.provider_id for c in calls} == {"call_same"}
    results = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert [r.call_id for r in results] == [c.id for c in calls]
    assert [r.ok for r in results][:3] == [True, False, False]


async def test_verify_and_branch_pair_calls_by_their_own_ids(
    duplicate_id_run: tuple[Path, str], tmp_path: Path
) -> None:
    run_dir, episode_id = duplicate_id_run
    (record,) = load_recorded(run_dir)
    for report in (await verify_sandbox(record), await verify_recorded(record)):
        assert report.differences == 0 and report.calls, report
    assert await _branch_divergences(run_dir, episode_id, tmp_path) == []


async def test_old_recordings_with_repeated_ids_pair_by_event_order(
    duplicate_id_run: tuple[Path, str], tmp_path: Path
) -> None:
    run_dir, episode_id = duplicate_id_run
    path = RunStore(run_dir).trajectory_path(episode_id)
    # Rewrite the recording as an older harness wrote it: every call id is the provider's.
    lines = []
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "tool_call":
            event["call"]["id"] = "call_same"
            event["call"].pop("provider_id", None)
        elif event["type"] == "tool_result":
            event["result"]["call_id"] = "call_same"
        elif event["type"] == "message":
            message = event["message"]
            for call in message.get("tool_calls", []):
                call["id"] = "call_same"
            if message.get("tool_call_id"):
                message["tool_call_id"] = "call_same"
        elif event["type"] == "world":
            event["call_id"] = "call_same"
        lines.append(json.dumps(event))
    path.write_text("\n".join(lines) + "\n")
    (record,) = load_recorded(run_dir)
    sandbox_report = await verify_sandbox(record)
    assert sandbox_report.differences == 0, sandbox_report
    assert (await verify_recorded(record)).differences == 0
    assert await _branch_divergences(run_dir, episode_id, tmp_path) == []
