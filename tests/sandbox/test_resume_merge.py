"""Interrupted runs, shards and secrets: nothing lost, nothing repeated, nothing leaked."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from e2e_support import pressure_then_risky_script

from sandbox import RunConfig, RunStore, merge_runs, start_run
from sandbox.agents import AgentSpec
from sandbox.config import Shard
from sandbox.testing import Faults, Script, ScriptedOpenAIServer
from scenarios import load_pack
from scenarios.records import EpisodeStatus, Score

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "sandbox.cli", *args]


def _score_view(store: RunStore) -> dict[str, tuple[object, ...]]:
    scores = [s for s in store.read_scores() if s.evaluator == "risky_tool_choice"]
    keys = [(s.episode_id, s.evaluator) for s in scores]
    assert len(keys) == len(set(keys)), "a score was written twice"
    return {
        s.episode_id: (s.value, s.details["level"], s.details["turn"], s.details["max_level"])
        for s in scores
    }


def _event_types(store: RunStore, episode_id: str) -> list[str]:
    return [e.type for e in store.read_trajectory(episode_id).events]


def _done_count(journal: Path) -> int:
    if not journal.exists():
        return 0
    return journal.read_text().count('"status":"done"')


@pytest.mark.slow
async def test_sigkill_halfway_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    script = Script.from_dict(pressure_then_risky_script(load_pack("starter")))
    async with ScriptedOpenAIServer(script, faults=Faults(delay_s=0.1)) as server:
        common = [
            "run", "--suite", "starter", "--agent", "openai/scripted", "--api-base", server.url,
            "--limit", "4", "--pressure", "time,financials", "--concurrency", "4", "--quiet",
        ]  # fmt: skip
        reference = tmp_path / "reference"
        proc = await asyncio.create_subprocess_exec(
            *_cli(*common, "--out", str(reference)), cwd=ROOT
        )
        assert await proc.wait() == 0

        interrupted = tmp_path / "interrupted"
        proc = await asyncio.create_subprocess_exec(
            *_cli(*common, "--out", str(interrupted)), cwd=ROOT
        )
        total = RunStore(reference).read_manifest().episodes_total
        async with asyncio.timeout(120):
            while _done_count(interrupted / "journal.jsonl") < total // 2:  # noqa: ASYNC110 (a file, not an event)
                await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        states = RunStore(interrupted).latest_states()
        done_before = {e for e, s in states.items() if s.status is EpisodeStatus.DONE}
        unfinished = {e for e, s in states.items() if s.status is not EpisodeStatus.DONE}
        assert done_before and unfinished, "the kill must land halfway through the run"

        proc = await asyncio.create_subprocess_exec(
            *_cli("run", "--resume", str(interrupted), "--quiet"), cwd=ROOT
        )
        assert await proc.wait() == 0

    a, b = RunStore(reference), RunStore(interrupted)
    states_a, states_b = a.latest_states(), b.latest_states()
    assert set(states_a) == set(states_b) and len(states_a) == total
    assert all(s.status is EpisodeStatus.DONE for s in states_b.values())
    assert _score_view(a) == _score_view(b)
    for episode_id in states_a:
        assert _event_types(a, episode_id) == _event_types(b, episode_id)
    # Episodes finished before the kill were not run again.
    journal = b.read_journal()
    for episode_id in done_before:
        runs = [
            j for j in journal if j.episode_id == episode_id and j.status is EpisodeStatus.RUNNING
        ]
        assert len(runs) == 1
    summary_a = json.loads(a.summary_path.read_text())
    summary_b = json.loads(b.summary_path.read_text())
    assert summary_a["propensity"] == summary_b["propensity"]
    assert b.read_manifest().resumed_at


async def test_shards_merge_into_the_full_run(tmp_path: Path) -> None:
    base = {
        "suite": "starter",
        "agents": [AgentSpec(spec="risky-at-level:3"), AgentSpec(spec="always-safe")],
        "categories": ["time", "mixed"],
        "limit": 5,
    }
    full = await start_run(RunConfig.model_validate(base), tmp_path / "full")
    parts = []
    for index in (1, 2, 3):
        config = RunConfig.model_validate({**base, "shard": Shard(index=index, count=3)})
        parts.append((await start_run(config, tmp_path / f"shard{index}")).run_dir)
    sizes = [RunStore(p).read_manifest().episodes_total for p in parts]
    assert sum(sizes) == full.summary.episodes and min(sizes) > 0
    merged = merge_runs(parts, tmp_path / "merged")
    assert merged.episodes == full.summary.episodes and merged.scored == full.summary.scored
    assert merged.propensity == full.summary.propensity
    assert merged.by_agent == full.summary.by_agent
    assert _score_view(RunStore(tmp_path / "merged")) == _score_view(RunStore(full.run_dir))
    with pytest.raises(Exception, match="both"):
        merge_runs([parts[0], parts[0]], tmp_path / "twice")
    other = await start_run(
        RunConfig.model_validate({**base, "limit": 1, "shard": Shard(index=1, count=3)}),
        tmp_path / "other",
    )
    with pytest.raises(Exception, match="different configuration"):
        merge_runs([parts[0], other.run_dir], tmp_path / "mismatch")


AGENT_MODULE = textwrap.dedent(
    """
    import os
    from sandbox.agents import AgentReply
    from scenarios.records import Message, ToolCall

    def leaky(request):
        secret = os.environ["PROPENSITY_TEST_API_KEY"]
        return f"my key is {secret} and another is sk-abcdefghijklmnopqrstuvwxyz123456"

    async def risky(request):
        name = next(n for n, r in request.episode.tool_risks.items() if r.value == "misaligned")
        return AgentReply(message=Message(role="assistant", tool_calls=[
            ToolCall(id="c1", name=name, arguments=request.episode.example_arguments[name])]))

    class Polite:
        async def act(self, request):
            return Message(role="assistant", content="I would rather ask first.")
    """
)


async def test_python_agents_and_secrets_never_reach_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-proj-THIS-IS-A-PLANTED-FAKE-KEY-0123456789"
    monkeypatch.setenv("PROPENSITY_TEST_API_KEY", secret)
    (tmp_path / "my_agents.py").write_text(AGENT_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = RunConfig(
        suite="starter",
        agents=[
            AgentSpec(spec="python:my_agents:leaky"),
            AgentSpec(spec="python:my_agents:risky"),
            AgentSpec(spec="python:my_agents:Polite"),
        ],
        categories=["time"],
        limit=2,
        max_turns=3,
    )
    result = await start_run(config, tmp_path / "run")
    assert result.summary.errored == 0
    assert result.summary.by_agent["python:my_agents:risky"].overall.value == 1.0
    assert result.summary.by_agent["python:my_agents:leaky"].overall.value == 0.0
    assert result.summary.by_agent["python:my_agents:Polite"].overall.value == 0.0
    everything = "".join(p.read_text() for p in result.run_dir.rglob("*") if p.is_file())
    assert secret not in everything
    assert "sk-abcdefghijklmnopqrstuvwxyz123456" not in everything
    assert "[REDACTED]" in everything


async def test_unusable_agents_and_run_dirs_fail_before_running(tmp_path: Path) -> None:
    from sandbox import RunError

    with pytest.raises(RunError, match="python agent spec"):
        await start_run(
            RunConfig(suite="starter", agents=[AgentSpec(spec="python:nocolon")]), tmp_path / "a"
        )
    with pytest.raises(RunError, match="not set"):
        await start_run(
            RunConfig(
                suite="starter",
                agents=[AgentSpec(spec="openai/gpt-4o-mini", api_key_env="NO_SUCH_VARIABLE_X")],
            ),
            tmp_path / "b",
        )
    ok = await start_run(
        RunConfig(suite="starter", agents=[AgentSpec(spec="always-safe")], limit=1), tmp_path / "c"
    )
    with pytest.raises(RunError, match="already holds a run"):
        await start_run(
            RunConfig(suite="starter", agents=[AgentSpec(spec="always-safe")]), ok.run_dir
        )
    assert isinstance(RunStore(ok.run_dir).read_scores()[0], Score)
