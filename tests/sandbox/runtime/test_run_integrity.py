"""Nothing lost: append-only records survive a torn tail, a cut trajectory is never taken for a
finished one, and a run directory has one writer at a time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import RetryPolicy, RunConfig, RunError, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.replay import load_recorded
from sandbox.replay.rescore import rescore
from sandbox.replay.sources import ReplaySourceError
from sandbox.results.merge import MergeError, merge_runs
from sandbox.results.store import CorruptRecordError, RunLock, open_append
from sandbox.results.summary import build_summary
from sandbox.runtime.runs import resume_run
from sandbox.testing import Faults, Script, ScriptedOpenAIServer
from scenarios.records import EpisodeStatus, JournalEntry


def _config() -> RunConfig:
    return RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe"), AgentSpec(spec="always-risky")],
        scenario_ids=["cyber-log-retention"],
        categories=["time"],
        namings=["harmful"],  # type: ignore[list-item]
    )


@pytest.fixture
async def run_dir(tmp_path: Path) -> Path:
    result = await start_run(_config(), tmp_path / "run")
    assert result.summary.errored == 0 and result.summary.scored == 4
    return result.run_dir


def _scores(run: Path) -> list[tuple[str, str, str | None]]:
    return sorted((s.episode_id, s.evaluator, s.label) for s in RunStore(run).read_scores())


def test_open_append_cuts_a_torn_tail_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3, "tor')
    said: list[str] = []
    with open_append(path, said.append) as handle:
        handle.write('{"a": 4}\n')
    assert path.read_bytes() == b'{"a": 1}\n{"a": 2}\n{"a": 4}\n'
    assert said and "torn last line of 13 bytes" in said[0]
    # Nothing to cut: nothing said.
    said.clear()
    with open_append(path, said.append) as handle:
        handle.write('{"a": 5}\n')
    assert not said and path.read_bytes().endswith(b'{"a": 5}\n')


@pytest.mark.parametrize("name", ["journal.jsonl", "scores.jsonl"])
async def test_a_torn_tail_in_an_append_only_file_then_resume_and_report(
    run_dir: Path, name: str
) -> None:
    before = _scores(run_dir)
    store = RunStore(run_dir)
    victim = sorted(store.latest_states())[0]
    # The kill came while the episode was being re-run: its state is "running", and the next
    # line of the file was torn half-way.
    store.journal(JournalEntry(episode_id=victim, status=EpisodeStatus.RUNNING, attempt=2))
    store.close()
    with (run_dir / name).open("ab") as handle:
        handle.write(b'{"episode_id": "cyber-log-retention.time.harmful.alw')
    logged: list[str] = []
    result = await resume_run(run_dir, log=logged.append)
    assert result.summary.scored == 4 and result.ran == 1
    assert any("torn last line" in line for line in logged)
    # A second resume and the report read the directory: nothing was glued onto the fragment.
    assert (await resume_run(run_dir)).ran == 0
    # Every line is whole again, and the report reads the directory as before.
    assert (run_dir / name).read_bytes().endswith(b"\n")
    assert _scores(run_dir) == before
    summary = build_summary(RunStore(run_dir))
    assert summary.scored == 4 and not summary.incomplete_trajectories


async def test_a_cut_trajectory_is_flagged_rerun_on_resume_and_refused_by_rescore(
    run_dir: Path,
) -> None:
    store = RunStore(run_dir)
    victim = sorted(store.latest_states())[0]
    path = store.trajectory_path(victim)
    lines = path.read_bytes().split(b"\n")
    # The kill came after the journal said done but before the end event reached the disk.
    kept = [line for line in lines if line and b'"type":"episode_ended"' not in line]
    path.write_bytes(b"\n".join(kept[:-1]) + b"\n" + kept[-1][: len(kept[-1]) // 2])
    summary = build_summary(store)
    assert summary.incomplete_trajectories == [victim]
    record = next(r for r in load_recorded(run_dir) if r.episode_id == victim)
    with pytest.raises(ReplaySourceError, match="no episode end"):
        rescore(record)
    logged: list[str] = []
    result = await resume_run(run_dir, log=logged.append)
    assert result.ran == 1 and any("incomplete trajectory" in line for line in logged)
    assert RunStore(run_dir).trajectory_complete(victim)
    assert not build_summary(RunStore(run_dir)).incomplete_trajectories
    assert len([s for s in RunStore(run_dir).read_scores() if s.episode_id == victim]) == len(
        {s.evaluator for s in RunStore(run_dir).read_scores()}
    )


async def test_a_second_writer_is_refused_with_the_holders_pid(
    run_dir: Path, tmp_path: Path
) -> None:
    with RunLock(run_dir):
        with pytest.raises(RunError, match=f"in use by another process \\(pid {os.getpid()}\\)"):
            await resume_run(run_dir)
    fresh = tmp_path / "fresh"
    with RunLock(fresh):
        with pytest.raises(RunError, match="in use by another process"):
            await start_run(_config(), fresh)
        with pytest.raises(MergeError, match="in use by another process"):
            merge_runs([run_dir], fresh)
    # Released: the run directory is usable again, and a finished run can be resumed.
    assert (await resume_run(run_dir)).ran == 0


def test_a_crafted_journal_cannot_lead_outside_the_run_directory(
    run_dir: Path, tmp_path: Path
) -> None:
    line = '{"episode_id": "../../../../escaped", "status": "done"}\n'
    with (run_dir / "journal.jsonl").open("a") as handle:
        handle.write(line)
    with pytest.raises(MergeError, match="episode_id"):
        merge_runs([run_dir], tmp_path / "merged")
    assert not (tmp_path / "escaped.jsonl").exists() and not list(tmp_path.glob("**/escaped*"))
    with pytest.raises(CorruptRecordError, match="not valid"):
        RunStore(run_dir).trajectory_path("../x")


async def test_agent_calls_count_every_attempt_of_a_failed_turn(tmp_path: Path) -> None:
    script = Script.from_dict(
        {"default": {"error": {"status": 500, "message": "down", "times": 99}}}
    )
    async with ScriptedOpenAIServer(script) as server:
        config = _config().model_copy(
            update={
                "agents": [AgentSpec(spec="openai/scripted", api_base=server.url)],
                "include_baseline": False,
                "retry": RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.02),
            }
        )
        result = await start_run(config, tmp_path / "run")
    assert result.summary.errored == 1
    assert result.summary.llm_calls == 3  # every attempt of the turn that finally failed


async def test_a_judge_that_never_answers_cannot_hang_the_run(tmp_path: Path) -> None:
    hung = Faults(delay_s=3600.0)
    says = Script.from_dict(
        {"default": {"text": "I will purge the old logs now.", "call": ["^purge_audit_logs$"]}}
    )
    async with (
        ScriptedOpenAIServer(Script(), faults=hung) as judge,
        ScriptedOpenAIServer(says) as agent,
    ):
        config = _config().model_copy(
            update={
                "agents": [AgentSpec(spec="openai/says", api_base=agent.url)],
                "judge_model": "openai/hung-judge",
                "judge_api_base": judge.url,
                "call_timeout_s": 1.0,
            }
        )
        started = time.monotonic()
        result = await start_run(config, tmp_path / "run")
        elapsed = time.monotonic() - started
    assert result.summary.errored == 0 and result.summary.scored == 2
    assert elapsed < 60, elapsed  # bounded by the call timeout and the judge's attempts
    world = [s for s in RunStore(result.run_dir).read_scores() if s.evaluator == "world_state"]
    assert world and all(s.details["intent_method"] != "llm" for s in world)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_a_full_disk_is_one_clear_line_and_the_run_resumes_cleanly(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        suite = ["--suite", "starter", "--agent", "always-safe", "--agent", "always-risky"]
        suite += ["--limit", "3", "--quiet"]
        full = _cli("run", *suite, "--out", str(disk / "run"))
        assert full.returncode == 1, full.stderr
        assert "the disk is full" in full.stderr and "Traceback" not in full.stderr
        assert "--resume" in full.stderr
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        resumed = _cli("run", "--resume", str(disk / "run"), "--quiet")
        assert resumed.returncode == 0, resumed.stderr
        reference = _cli("run", *suite, "--out", str(tmp_path / "reference"))
        assert reference.returncode == 0, reference.stderr
        assert _scores(disk / "run") == _scores(tmp_path / "reference")
        assert not build_summary(RunStore(disk / "run")).incomplete_trajectories
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


async def test_a_done_episode_without_its_trajectory_is_refused_by_rescore(
    run_dir: Path,
) -> None:
    store = RunStore(run_dir)
    store.trajectory_path(sorted(store.latest_states())[0]).unlink()
    with pytest.raises(ReplaySourceError, match="have no trajectory"):
        load_recorded(run_dir)


async def test_a_second_run_into_a_held_directory_names_the_holder(
    run_dir: Path, tmp_path: Path
) -> None:
    with RunLock(run_dir):
        with pytest.raises(RunError, match=f"pid {os.getpid()}"):
            await start_run(_config(), run_dir)
        with pytest.raises(MergeError, match=f"pid {os.getpid()}"):
            merge_runs([tmp_path], run_dir)
