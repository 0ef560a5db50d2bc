"""`propensity replay ...` end to end through the command line."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from conftest import EXTERNAL

from sandbox import RunConfig, start_run
from sandbox.agents import AgentSpec
from sandbox.cli import main


async def _run(tmp_path: Path) -> Path:
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe"), AgentSpec(spec="always-risky")],
        scenario_ids=["bio-ibc-amendment"],
        categories=["time"],
    )
    return (await start_run(config, tmp_path / "run")).run_dir


def test_rescore_verify_and_branch_our_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI runs its own event loop, so this test must not run inside one.
    run = asyncio.run(_run(tmp_path))
    scores = tmp_path / "scores.jsonl"
    assert main(["replay", "rescore", str(run), "--out", str(scores)]) == 0
    out = capsys.readouterr().out
    assert "re-scored 8 episode(s)" in out and "completed-harm" in out
    assert "8 scored" in out
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    recorded = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
    key = lambda s: (s["episode_id"], s["evaluator"])  # noqa: E731
    assert sorted((key(s), s["value"]) for s in rows) == sorted(
        (key(s), s["value"]) for s in recorded
    )
    assert main(["replay", "verify", str(run), "--against", "sandbox"]) == 0
    assert "0 difference(s), 0 not run" in capsys.readouterr().out
    # Tamper with one recorded observation: verify must say so and exit non-zero.
    trajectory = next((run / "trajectories").glob("*time.harmful.always-safe*.jsonl"))
    lines = trajectory.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if '"type":"tool_result"' in line)
    event = json.loads(lines[index])
    event["result"]["output"] = "Review approved."
    lines[index] = json.dumps(event)
    trajectory.write_text("\n".join(lines) + "\n")
    assert main(["replay", "verify", str(run), "--against", "sandbox"]) == 1
    assert "1 difference(s)" in capsys.readouterr().out
    episode = trajectory.stem
    out_dir = tmp_path / "branch"
    argv = ["replay", "branch", str(run), "--episode", episode, "--at", "2"]
    assert main([*argv, "--agent", "always-risky", "--out", str(out_dir)]) == 0
    assert "risk-goal completion" in capsys.readouterr().out
    # A branch point beyond the recording is refused with one line.
    too_far = ["replay", "branch", str(run), "--episode", episode, "--at", "99"]
    assert main([*too_far, "--agent", "always-risky", "--out", str(tmp_path / "b2")]) == 1
    assert "--at must be at most" in capsys.readouterr().err
    # The largest step it names is one a branch can start at; the one after, refused, says why.
    _branch_points_are_refused_consistently(run, episode, tmp_path, capsys)
    # An errored episode is counted apart, never scored as behaviour.
    ended = json.loads(lines[-1])
    assert ended["type"] == "episode_ended"
    ended["status"] = "errored"
    trajectory.write_text("\n".join([*lines[:-1], json.dumps(ended)]) + "\n")
    assert main(["replay", "rescore", str(run)]) == 0
    assert "re-scored 8 episode(s)" in (out := capsys.readouterr().out)
    assert "7 scored, 1 errored (not scored: infrastructure)" in out


def _branch_points_are_refused_consistently(
    run: Path, episode: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def branch(at: str) -> tuple[int, str]:
        argv = ["replay", "branch", str(run), "--episode", episode, "--at", at]
        code = main([*argv, "--agent", "always-risky", "--out", str(tmp_path / f"at-{at}")])
        return code, " ".join(capsys.readouterr().err.split())

    code, err = branch("0")  # a clear error, not a validation traceback
    assert code == 1 and "internal error" not in err and "ValidationError" not in err
    assert "--at 0: steps count from 1" in err and "--at must be 1-" in err
    code, err = branch("99")
    match = re.search(r"--at must be at most (\d+)", err)
    assert match, err
    largest = int(match.group(1))
    assert f"--at {largest + 1}: " in err and "ended after step" in err
    code, err = branch(str(largest + 1))
    assert code == 1 and f"--at must be at most {largest}" in err
    assert branch(str(largest))[0] == 0


def test_branch_help_says_at_counts_from_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "branch", "--help"])
    assert "counting agent turns from 1" in " ".join(capsys.readouterr().out.split())


@pytest.mark.external
def test_toolemu_dumps_rescore_with_an_agreement_table_and_verify_clean(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dumps = str(EXTERNAL / "toolemu" / "trajectories-gpt-4o-mini")
    assert main(["replay", "rescore", dumps, "--agreement"]) == 0
    out = capsys.readouterr().out
    assert "re-scored 144 episode(s)" in out and "n = 144 pairs; missing = 0" in out
    assert "Cohen's kappa" in out
    assert main(["replay", "verify", dumps]) == 0
    assert "268 call(s) re-executed, 0 difference(s), 0 not run" in capsys.readouterr().out


def test_unreadable_inputs_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert main(["replay", "rescore", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err


def test_one_episode_given_twice_across_inputs_is_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two paths holding the same episode (a run and its copy): one episode would be scored
    twice; refused, naming both places, where keyed by id one score silently hid the other."""
    from sandbox import RunConfig, start_run
    from sandbox.agents import AgentSpec

    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe")],
        limit=1,
        categories=["time"],
        include_baseline=False,
        namings=["harmful"],  # type: ignore[list-item]
    )
    run = asyncio.run(start_run(config, tmp_path / "run")).run_dir
    (trajectory,) = sorted((run / "trajectories").glob("*.jsonl"))
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(trajectory.read_bytes())
    assert main(["replay", "rescore", str(run), str(copy)]) != 0
    err = capsys.readouterr().err
    assert "is recorded twice" in err and "copy.jsonl" in err
