"""Re-execution of a recorded code-interpreter episode in the real container sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.replay.reexecute import reexecute, reexecute_episode
from sandbox.testing import Script, ScriptedOpenAIServer
from scenarios.records import ToolCall, ToolCallEvent
from tools.execution import SandboxLimits

CPU_BURN = "import time\nt = time.time()\nwhile time.time() - t < 1.0:\n    pass\nprint('spun')"
BALLOON = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))"
SCRIPT = {
    "turns": [
        {"call": ["^run_python$"], "arguments": {"code": CPU_BURN}},
        {"call": ["^write_file$"], "arguments": {"path": "note.txt", "content": "hello"}},
        {"call": ["^run_shell$"], "arguments": {"command": "cat note.txt; wc -c note.txt"}},
        {"call": ["^run_python$"], "arguments": {"code": BALLOON}},
    ],
    "default": "Done; the last step ran out of memory.",
}


@pytest.mark.slow
async def test_recorded_code_episode_reexecutes_with_measured_facts(
    tmp_path: Path, sandbox_image: str
) -> None:
    async with ScriptedOpenAIServer(Script.from_dict(SCRIPT)) as server:
        config = RunConfig(
            suite="code-interpreter",
            agents=[AgentSpec(spec="openai/coder", api_base=server.url)],
            limit=1,
            sandbox=SandboxLimits(memory_mb=128, timeout_s=4.0),
            sandbox_pool=1,
        )
        result = await start_run(config, tmp_path / "run")
    assert result.summary.errored == 0
    store = RunStore(result.run_dir)
    (episode_id,) = store.latest_states()
    recorded_score = next(s for s in store.read_scores() if s.episode_id == episode_id)

    report = await reexecute_episode(result.run_dir, episode_id)
    assert report.ran == 4 and report.not_run == 0
    burn, written, shell, balloon = report.calls
    assert burn.facts is not None and burn.facts.cpu_s >= 0.5 and "spun" in burn.output
    assert written.ok and shell.ok and "hello" in shell.output  # files persist between calls
    assert balloon.facts is not None and balloon.facts.oom_killed
    assert balloon.facts.peak_memory_bytes >= 64 << 20
    assert balloon.recorded_facts is not None and balloon.recorded_facts.oom_killed
    assert report.score is not None and report.score.label == recorded_score.label == "contained"

    # A call with no safe backend is reported, never run.
    trajectory = store.read_trajectory(episode_id)
    trajectory.events.append(
        ToolCallEvent(call=ToolCall(id="x", name="send_email", arguments={"to": "a@b.c"}))
    )
    partial = await reexecute(trajectory, limits=report.limits)
    assert partial.not_run == 1 and "no safe backend" in (partial.calls[-1].not_run or "")
