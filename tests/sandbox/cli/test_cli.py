"""The command line as a user meets it: exit codes, outputs, and no tracebacks."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def propensity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_run_report_and_list(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = propensity(
        "run", "--suite", "starter", "--agent", "risky-at-level:2", "--limit", "2",
        "--pressure", "time,mixed", "--levels", "1-4", "--out", str(run_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "By pressure level" in done.stdout and "risky-at-level:2" in done.stdout
    assert "episodes 12/12" in done.stderr  # plain progress lines when not on a terminal

    as_json = propensity("report", str(run_dir), "--format", "json")
    summary = json.loads(as_json.stdout)
    assert summary["episodes"] == 12 and summary["errored"] == 0
    levels = summary["by_agent"]["risky-at-level:2"]["by_level"]
    # Every level of the schedule (--levels 1-4), cumulative: risky from 2 on, carried forward.
    assert {k: v["value"] for k, v in levels.items()} == {
        "0": 0.0,
        "1": 0.0,
        "2": 1.0,
        "3": 1.0,
        "4": 1.0,
    }
    assert "cumulative" in summary["definitions"]["by_agent.AGENT.by_level"]
    assert "POOLED" in summary["propensity"]["scope"]
    rows = list(
        csv.DictReader(io.StringIO(propensity("report", str(run_dir), "--format", "csv").stdout))
    )
    assert {"agent", "breakdown", "key", "value", "ci_low", "ci_high", "n", "k"} <= set(rows[0])
    # Per agent only, and each by-level row says how it was obtained.
    assert {row["agent"] for row in rows} == {"risky-at-level:2"}
    level_rows = [row for row in rows if row["breakdown"] == "level"]
    assert [row["key"] for row in level_rows] == ["0", "1", "2", "3", "4"]
    assert all(row["note"].startswith("cumulative") for row in level_rows)
    table = propensity("report", str(run_dir)).stdout
    words = " ".join(table.split())  # the definition under the table wraps to its width
    assert "By-level propensity is cumulative: the value at level L" in words
    assert "│ all " not in table
    assert (run_dir / "summary.csv").exists() and (run_dir / "summary.json").exists()

    checked = propensity("validate", "scenarios/packs/code-interpreter")
    assert checked.returncode == 0 and "64 code task(s)" in checked.stdout
    for what, expected in (
        ("packs", "starter"),
        ("scenarios", "self-shutdown-job"),
        ("tools", "cancel_own_shutdown"),
        ("agents", "risky-at-level:K"),
    ):
        listed = propensity("list", what)
        assert listed.returncode == 0 and expected in listed.stdout, listed.stderr


def test_user_errors_are_one_clear_line(tmp_path: Path) -> None:
    cases = [
        (("run", "--suite", "starter", "--agent", "nonsense"), "unknown agent spec"),
        (("run", "--suite", "no-such-pack", "--agent", "always-safe"), "no such pack"),
        (("run", "--suite", "starter"), "--agent is required"),
        (("run", "--suite", "starter", "--agent", "always-safe", "--pressure", "boredom"),
         "unknown pressure category"),
        (("run", "--suite", "starter", "--agent", "always-safe", "--shard", "3/2"), "shard"),
        (("run", "--resume", str(tmp_path / "missing")), "not a run directory"),
        (("report", str(tmp_path)), "not a run directory"),
    ]  # fmt: skip
    for args, message in cases:
        result = propensity(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_tools_new_refuses_bad_names_and_overwrites(tmp_path: Path) -> None:
    bad = propensity("tools", "new", "green house", "--dir", str(tmp_path))
    assert bad.returncode == 1 and "CamelCase" in bad.stderr
    assert propensity("tools", "new", "Vault", "--dir", str(tmp_path)).returncode == 0
    again = propensity("tools", "new", "Vault", "--dir", str(tmp_path))
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    missing = propensity("tools", "try", "NoSuchTool")
    assert missing.returncode == 1 and "no tool 'NoSuchTool'" in missing.stderr


def test_cache_stats_and_prune(tmp_path: Path) -> None:
    import asyncio
    import time

    from tools.cache import CacheEntry, ResponseCache, cache_key

    cache = ResponseCache(tmp_path)
    for index, age in enumerate((10 * 86400, 0)):
        messages = [{"role": "user", "content": f"q{index}"}]
        key = cache_key("m", messages, {})
        entry = CacheEntry(
            key=key,
            model="m",
            messages=messages,
            params={},
            response={"content": "a"},
            created_at=time.time() - age,
        )
        asyncio.run(cache.put(entry))
    assert "2 response(s)" in propensity("cache", "stats", "--dir", str(tmp_path)).stdout
    pruned = propensity("cache", "prune", "--dir", str(tmp_path), "--older-than-days", "5")
    assert "removed 1 cached response(s)" in pruned.stdout and "1 response(s)" in pruned.stdout


async def test_tools_try_an_emulated_tool(tmp_path: Path) -> None:
    import asyncio
    import os
    import sys

    from sandbox.testing import Script, ScriptedOpenAIServer

    observation = '{"temperature_c": -79.8, "set_point_c": -80, "alarms": []}'
    toolkit = ROOT / "tests" / "tools" / "data" / "lab_freezer.yaml"
    async with ScriptedOpenAIServer(Script.from_dict({"default": observation})) as server:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sandbox.cli", "tools", "try", "LabFreezerReadStatus",
            "--toolkits", str(toolkit), "--args", '{"freezer_id": "ULT-03"}',
            "--emulator-model", "openai/emulator", "--emulator-api-base", server.url,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PROPENSITY_CACHE_DIR": str(tmp_path), "COLUMNS": "200"},
        )  # fmt: skip
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    result = json.loads(stdout)
    assert result["ok"] and json.loads(result["output"])["temperature_c"] == -79.8
    assert result["data"]["emulator"]["model"] == "openai/emulator"


def test_user_text_with_rich_markup_is_printed_not_parsed(tmp_path: Path) -> None:
    weird = tmp_path / "x[/]y[bold]"
    weird.mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "run", "--suite", str(weird / "missing[/]"),
         "--agent", "always-safe", "--out", str(weird / "run")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "MarkupError" not in result.stderr and "Traceback" not in result.stderr
    assert "missing[/]" in result.stderr


def test_machine_failures_are_one_clear_line(tmp_path: Path) -> None:
    from sandbox.cli import _os_problem

    full = OSError(28, "No space left on device", str(tmp_path / "journal.jsonl"))
    line = _os_problem(ExceptionGroup("unhandled errors in a TaskGroup", [full]))
    assert line is not None and line.startswith("the disk is full: ") and "--resume" in line
    assert _os_problem(PermissionError(13, "denied", "/x")) is not None
    assert _os_problem(ValueError("a bug")) is None
    # Resuming is advice for a run only; a missing file is not a resource to free.
    assert "--resume" not in (_os_problem(full, "replay") or "")
    missing = _os_problem(FileNotFoundError(2, "No such file", "/x/scores.jsonl"), "replay")
    assert missing == "no such file or directory: /x/scores.jsonl"


def test_a_closed_pipe_is_not_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`propensity ... | head`: the reader left; no 'internal error', exit 1, nothing raised."""
    from sandbox.cli import main

    sink = (tmp_path / "sink").open("w")

    class ClosedPipe(io.TextIOWrapper):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    closed = ClosedPipe(io.BytesIO())
    monkeypatch.setattr(closed, "fileno", sink.fileno)
    monkeypatch.setattr(sys, "stdout", closed)
    labels = tmp_path / "labels.csv"
    labels.write_text("episode_id,label\ne1,1\ne2,3\n")
    argv = ["judges", "agreement", str(labels), str(labels), "--format", "json"]
    assert main([*argv, "--resamples", "0"]) == 1
    assert "internal error" not in capsys.readouterr().err


def test_list_accepts_plugins_like_every_command_that_shows_tools() -> None:
    done = propensity("list", "tools", "--suite", "starter", "--plugin", "json")
    assert done.returncode == 0, done.stderr
    assert "copy_checkpoint" in done.stdout
