"""`propensity export`: the flat tables must say exactly what the run directory says, and read
back unchanged with nothing but the standard library (json, csv) or, when installed, pyarrow."""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib.util
import io
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.cli.results import add_export_parser, run_export
from sandbox.results.exports import (
    EPISODE_COLUMNS,
    EVENT_COLUMNS,
    ExportError,
    csv_cell,
    export_run,
    load_episodes,
    load_events,
)
from scenarios.records import EpisodeStatus, JournalEntry, ToolCallEvent, ToolResultEvent

ROOT = Path(__file__).resolve().parents[3]
EVALUATOR_COLUMNS = [
    "risky_tool_choice_value",
    "risky_tool_choice_label",
    "tool_call_protocol_value",
    "tool_call_protocol_label",
    "world_state_value",
    "world_state_label",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe"), AgentSpec(spec="always-risky")],
        categories=["time"],
        limit=3,
    )
    result = asyncio.run(start_run(config, tmp_path_factory.mktemp("export") / "run"))
    assert result.summary.errored == 0
    return result.run_dir


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _as_csv(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{key: csv_cell(value) for key, value in row.items()} for row in rows]


def test_episode_rows_match_the_run(run_dir: Path) -> None:
    store = RunStore(run_dir)
    states = store.latest_states()
    scores = {(s.episode_id, s.evaluator): s for s in store.read_scores()}
    rows = load_episodes(run_dir)
    # 3 scenarios × (time + baseline) × 2 namings × 2 agents.
    assert len(rows) == len(states) == 24
    assert list(rows[0]) == EPISODE_COLUMNS + EVALUATOR_COLUMNS
    for row in rows:
        eid = row["episode_id"]
        trajectory = store.read_trajectory(eid)
        started, ended = trajectory.started, trajectory.ended
        assert started is not None and ended is not None
        assert row["status"] == states[eid].status.value == "done"
        assert row["llm_calls"] == states[eid].llm_calls
        assert (row["scenario_id"], row["category"], row["agent"], row["repeat"]) == (
            started.scenario_id,
            started.category,
            started.agent,
            started.repeat,
        )
        assert row["naming"] == started.naming.value and row["domain"] == started.domain
        assert (row["end_reason"], row["turns"], row["final_level"]) == (
            ended.reason,
            ended.turns,
            ended.final_level,
        )
        assert row["events"] == len(trajectory.events)
        risky = scores[(eid, "risky_tool_choice")]
        assert row["risky_tool_choice_value"] == risky.value
        assert row["risky_tool_choice_label"] == risky.label
        assert row["misaligned_called"] is (row["agent"] == "always-risky")
        assert row["misaligned_tool"] == risky.details["misaligned_tool"]
        world = scores[(eid, "world_state")]
        assert row["world_state_label"] == world.label
        assert row["world_completion"] is world.details["completion"]
        assert row["code_outcome"] is None  # no code-interpreter task in this run


def test_event_rows_match_the_trajectories(run_dir: Path) -> None:
    store = RunStore(run_dir)
    rows = load_events(run_dir)
    assert rows and list(rows[0]) == EVENT_COLUMNS
    by_episode: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_episode.setdefault(row["episode_id"], []).append(row)
    assert set(by_episode) == set(store.latest_states())
    for eid, episode_rows in by_episode.items():
        events = store.read_trajectory(eid).events
        assert [r["seq"] for r in episode_rows] == [e.seq for e in events]
        assert [r["type"] for r in episode_rows] == [e.type for e in events]
        for row, event in zip(episode_rows, events, strict=True):
            if isinstance(event, ToolCallEvent):
                assert json.loads(row["arguments"]) == event.call.arguments
                assert row["tool"] == event.call.name and row["level"] == event.level
            elif isinstance(event, ToolResultEvent):
                assert row["ok"] is event.result.ok and row["output"] == event.result.output
                assert row["risk"] == (event.result.risk.value if event.result.risk else None)
                assert row["output_truncated"] is False


def test_long_texts_are_cut_and_flagged(run_dir: Path) -> None:
    rows = load_events(run_dir, max_chars=10)
    results = [r for r in rows if r["type"] == "tool_result"]
    assert results and all(len(r["output"]) <= 10 for r in results)
    assert any(r["output_truncated"] and r["output_chars"] > 10 for r in results)
    messages = [r for r in rows if r["type"] == "message" and r["text"]]
    assert any(r["text_truncated"] for r in messages)
    everything = load_events(run_dir, max_chars=0)
    assert not any(r["output_truncated"] or r["text_truncated"] for r in everything)


def test_jsonl_round_trip(run_dir: Path, tmp_path: Path) -> None:
    written = export_run(run_dir, "jsonl", tmp_path)
    assert [p.name for p in written] == ["episodes.jsonl", "events.jsonl"]
    episodes = [json.loads(line) for line in written[0].read_text("utf-8").splitlines()]
    events = [json.loads(line) for line in written[1].read_text("utf-8").splitlines()]
    assert episodes == load_episodes(run_dir)
    assert events == load_events(run_dir)


def test_csv_round_trip(run_dir: Path, tmp_path: Path) -> None:
    written = export_run(run_dir, "csv", tmp_path)
    header, episodes = _csv_rows(written[0])
    assert header == EPISODE_COLUMNS + EVALUATOR_COLUMNS
    assert episodes == _as_csv(load_episodes(run_dir))
    risky = [r for r in episodes if r["agent"] == "always-risky"]
    assert risky and all(r["misaligned_called"] == "true" for r in risky)
    assert all(r["risky_tool_choice_value"] == "1.0" for r in risky)
    header, events = _csv_rows(written[1])
    assert header == EVENT_COLUMNS
    # Multi-line texts (system prompts) survive the CSV quoting.
    assert events == _as_csv(load_events(run_dir))
    assert any("\n" in r["text"] for r in events)


def test_default_directory_is_inside_the_run(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    written = export_run(copy, "csv")
    assert all(path.parent == copy / "exports" for path in written)


def test_unfinished_episode_without_trajectory(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    store = RunStore(copy)
    store.journal(
        JournalEntry(episode_id="zz-pending.time.harmful.x.r0", status=EpisodeStatus.RUNNING)
    )
    store.close()
    rows = load_episodes(copy)
    last = rows[-1]
    assert last["episode_id"] == "zz-pending.time.harmful.x.r0" and last["status"] == "running"
    assert last["scenario_id"] is None and last["risky_tool_choice_value"] is None
    assert last["events"] == 0


def test_parquet_round_trip(run_dir: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is optional and not installed here")
    written = export_run(run_dir, "parquet", tmp_path)
    assert pq.read_table(written[0]).to_pylist() == load_episodes(run_dir)
    assert pq.read_table(written[1]).to_pylist() == load_events(run_dir)


def test_parquet_without_pyarrow_says_so(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ExportError, match="needs pyarrow"):
        export_run(run_dir, "parquet", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not a run directory"):
        load_episodes(tmp_path)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="propensity")
    add_export_parser(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    code = run_export(
        parser.parse_args(argv),
        Console(file=out, width=200, color_system=None),
        Console(file=err, width=200, color_system=None),
    )
    return code, out.getvalue(), err.getvalue()


def test_command(run_dir: Path, tmp_path: Path) -> None:
    code, text, _ = _cli(["export", str(run_dir), "--format", "csv", "--out", str(tmp_path)])
    assert code == 0
    assert f"wrote {tmp_path / 'episodes.csv'}" in text
    assert (tmp_path / "events.csv").exists()
    code, _, error = _cli(["export", str(tmp_path), "--out", str(tmp_path / "x")])
    assert code == 1 and "not a run directory" in error
    code, _, error = _cli(["export", str(run_dir), "--max-chars", "-1"])
    assert code == 1 and "--max-chars" in error


def test_the_documented_loaders_work(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/loading-results.md: every python block runs against a real run as written (the
    pandas ones only where pandas is installed; it is optional)."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    export_run(copy, "jsonl")
    export_run(copy, "csv")
    page = (ROOT / "docs" / "loading-results.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert len(blocks) == 3
    ran = 0
    for block in blocks:
        assert 'run_dir = "runs/demo"' in block
        if "import pandas" in block and importlib.util.find_spec("pandas") is None:
            continue
        exec(block.replace('"runs/demo"', repr(str(copy))), {})
        ran += 1
    assert ran >= 1
    out = capsys.readouterr().out
    assert "always-risky 1.0" in out and "always-safe 0.0" in out
