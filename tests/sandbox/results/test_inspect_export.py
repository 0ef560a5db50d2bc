"""`propensity export RUN --format inspect`: real runs written as Inspect AI eval logs through
inspect_ai's own API, read back with ``inspect_ai.log.read_eval_log`` and checked against the run
directory (samples, conversation, tool calls and results, scores, metadata, errors)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.cli.results import add_export_parser, run_export
from sandbox.results.exports import ExportError
from sandbox.results.inspect_export import (
    INSTALL_HINT,
    export_inspect,
    log_file_name,
)
from scenarios.records import (
    EpisodeStatus,
    JournalEntry,
    MessageEvent,
    Score,
    ToolCallEvent,
    ToolResultEvent,
    Trajectory,
)

inspect_log = pytest.importorskip("inspect_ai.log", reason="inspect_ai is an optional extra")

# A Python agent of this test: an infrastructure failure on every benign-named episode (errored
# episodes), and on harmful ones a call whose arguments are not JSON, then a plain answer.
AGENT_MODULE = """
from scenarios.records import Message, ToolCall


def flaky(request):
    if request.episode.naming == "benign":
        raise RuntimeError("the provider exploded")
    if request.episode.turn == 0:
        name = request.tools[0]["function"]["name"]
        call = ToolCall(id="g1", name=name, raw_arguments='{"oops": ')
        return Message(role="assistant", content="Trying.", tool_calls=[call])
    return "I will wait for the approvals."
"""
FLAKY = "python:inspect_export_flaky:flaky"
AGENTS = ["always-safe", "risky-at-level:2", FLAKY]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("inspect-export")
    (root / "inspect_export_flaky.py").write_text(AGENT_MODULE, encoding="utf-8")
    sys.path.insert(0, str(root))
    try:
        config = RunConfig(
            suite="starter",
            agents=[AgentSpec(spec=a) for a in AGENTS],
            categories=["time"],
            limit=2,
            cache_dir=str(root / "cache"),
        )
        result = asyncio.run(start_run(config, root / "run"))
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("inspect_export_flaky", None)
    assert result.summary.errored == 4  # the flaky agent's benign episodes
    yield result.run_dir


def _cli(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="propensity")
    add_export_parser(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    code = run_export(
        parser.parse_args(argv),
        Console(file=out, width=400, color_system=None),
        Console(file=err, width=400, color_system=None),
    )
    return code, out.getvalue(), err.getvalue()


def _scores(store: RunStore) -> dict[str, dict[str, Score]]:
    by_episode: dict[str, dict[str, Score]] = {}
    for score in store.read_scores():
        by_episode.setdefault(score.episode_id, {})[score.evaluator] = score
    return by_episode


def _check_conversation(sample: Any, trajectory: Trajectory) -> None:
    """The sample's messages are the trajectory's messages, in order, with calls and results."""
    events = [e for e in trajectory.events if isinstance(e, MessageEvent)]
    results = {
        e.result.call_id: e.result for e in trajectory.events if isinstance(e, ToolResultEvent)
    }
    levels = {e.call.id: e.level for e in trajectory.events if isinstance(e, ToolCallEvent)}
    assert [m.role for m in sample.messages] == [e.message.role for e in events]
    for message, event in zip(sample.messages, events, strict=True):
        ours = event.message
        assert message.text == (ours.content or "")
        assert message.metadata["seq"] == event.seq and message.metadata["turn"] == event.turn
        if ours.role == "user" and "pressure" in ours.meta:
            assert message.metadata["origin"] == "pressure"
            assert message.metadata["pressure"] == ours.meta["pressure"]
        if ours.role == "assistant":
            calls = message.tool_calls or []
            assert [(c.id, c.function) for c in calls] == [(c.id, c.name) for c in ours.tool_calls]
            for call, recorded in zip(calls, ours.tool_calls, strict=True):
                assert call.arguments == recorded.arguments
                assert (call.parse_error is None) is (recorded.raw_arguments is None)
                assert message.metadata["calls"][call.id]["level"] == levels[call.id]
        if ours.role == "tool":
            result = results[str(ours.tool_call_id)]
            assert message.tool_call_id == ours.tool_call_id and message.function == ours.name
            assert (message.error is None) is result.ok
            assert message.metadata["ok"] is result.ok and message.metadata["risk"] == (
                result.risk.value if result.risk else None
            )
            if not result.ok:
                assert message.error.message == result.output


def test_round_trip_one_log_per_agent(run_dir: Path, tmp_path: Path) -> None:
    export = export_inspect(run_dir, tmp_path)
    store = RunStore(run_dir)
    manifest, states, scores = store.read_manifest(), store.latest_states(), _scores(store)
    assert [log.agent for log in export.logs] == AGENTS and not export.skipped
    assert export.samples == len(states) == 24
    listed = {
        Path(info.name.removeprefix("file://"))
        for info in inspect_log.list_eval_logs(str(tmp_path))
    }
    assert listed == set(export.paths)
    pressure_seen = tool_errors_seen = parse_errors_seen = 0
    for written in export.logs:
        log = inspect_log.read_eval_log(str(written.path))
        assert log.eval.task == "starter" and log.eval.model == written.agent
        assert log.eval.run_id == manifest.run_id
        assert log.eval.task_args["config_hash"] == manifest.config_hash
        assert log.eval.packages == manifest.packages
        assert log.eval.metadata["propensity"]["run_id"] == manifest.run_id
        assert log.eval.created.startswith(written.path.name[:10])
        ids = sorted(
            eid for eid in states if store.read_trajectory(eid).started.agent == written.agent
        )
        assert [s.id for s in log.samples] == ids and log.eval.dataset.sample_ids == ids
        errored = [s for s in log.samples if states[str(s.id)].status is EpisodeStatus.ERRORED]
        assert written.errored == len(errored) == (4 if written.agent == FLAKY else 0)
        assert log.status == ("error" if errored else "success")
        for sample in log.samples:
            eid = str(sample.id)
            trajectory = store.read_trajectory(eid)
            started = trajectory.started
            assert started is not None
            _check_conversation(sample, trajectory)
            assert sample.input == trajectory.events[2].message.content  # the task
            meta = sample.metadata
            assert (meta["scenario"], meta["category"], meta["naming"], meta["repeat"]) == (
                started.scenario_id,
                started.category,
                started.naming.value,
                started.repeat,
            )
            assert (meta["agent"], meta["kind"], meta["status"]) == (
                written.agent,
                "scenario",
                states[eid].status.value,
            )
            if sample in errored:
                assert sample.error is not None and "the provider exploded" in sample.error.message
                assert "Traceback" in sample.error.traceback
                assert meta["error"] == states[eid].error and not sample.scores
            else:
                assert sample.error is None and meta["flags"] == []
                recorded = scores[eid]
                assert set(sample.scores) == set(recorded)
                for name, score in recorded.items():
                    got = sample.scores[name]
                    assert got.answer == score.label
                    if score.value is not None:
                        assert got.value == score.value and got.metadata == score.details
                    else:  # no value recorded: the label stands in, and the metadata says so
                        assert got.value == (score.label or "none")
                        assert got.metadata == {**score.details, "value_recorded": False}
            pressure_seen += sum(m.metadata.get("origin") == "pressure" for m in sample.messages)
            tool_errors_seen += sum(getattr(m, "error", None) is not None for m in sample.messages)
            parse_errors_seen += sum(
                c.parse_error is not None
                for m in sample.messages
                for c in (getattr(m, "tool_calls", None) or [])
            )
        # The aggregated metrics: mean and count of each evaluator over done episodes.
        done = [s for s in log.samples if s.error is None]
        for eval_score in log.results.scores:
            values = [
                scores[str(s.id)][eval_score.name].value
                for s in done
                if eval_score.name in scores[str(s.id)]
                and scores[str(s.id)][eval_score.name].value is not None
            ]
            assert eval_score.metrics["count"].value == len(values)
            if values:
                assert eval_score.metrics["mean"].value == pytest.approx(sum(values) / len(values))
        assert log.results.completed_samples == len(done)
        risky = next(s for s in log.results.scores if s.name == "risky_tool_choice")
        if written.agent == "always-safe":
            assert risky.metrics["mean"].value == 0.0
    assert pressure_seen and tool_errors_seen and parse_errors_seen


def test_header_only_and_json_per_run(run_dir: Path, tmp_path: Path) -> None:
    code, text, _ = _cli(
        [
            "export", str(run_dir), "--format", "inspect", "--out", str(tmp_path),
            "--inspect-per", "run", "--inspect-format", "json",
        ]
    )  # fmt: skip
    assert code == 0
    (path,) = tmp_path.glob("*.json")
    assert f"wrote {path} (24 samples: 4 errored, 0 incomplete" in text
    assert "24 samples in 1 log(s); 0 episode(s) skipped" in text
    assert f"inspect view --log-dir {tmp_path}" in text
    header = inspect_log.read_eval_log(str(path), header_only=True)
    assert header.samples is None and header.status == "error"
    assert header.results is not None and header.results.total_samples == 24
    assert {s.name for s in header.results.scores} >= {"risky_tool_choice", "world_state"}
    assert header.eval.model == ", ".join(AGENTS)
    # Inspect lists a .json log only when its name is in Inspect's pattern (time first).
    (info,) = inspect_log.list_eval_logs(str(tmp_path))
    assert info.name.endswith(path.name) and info.task == "starter"
    full = inspect_log.read_eval_log(str(path))
    assert len({s.metadata["agent"] for s in full.samples}) == 3


def test_file_names_are_deterministic_and_safe(run_dir: Path, tmp_path: Path) -> None:
    first = export_inspect(run_dir, tmp_path / "a").paths
    second = export_inspect(run_dir, tmp_path / "b").paths
    assert [p.name for p in first] == [p.name for p in second]
    manifest = RunStore(run_dir).read_manifest()
    for path, agent in zip(first, AGENTS, strict=True):
        assert re.fullmatch(r"[0-9T+-]+_starter_[A-Za-z0-9.-]+_[0-9a-f]{22}\.eval", path.name)
        assert path.name == log_file_name(manifest, agent, "eval")
    # Labels whose slugs collide still get their own file.
    assert log_file_name(manifest, "a_b", "eval") != log_file_name(manifest, "a-b", "eval")


def test_incomplete_episodes_are_flagged_and_skips_are_said(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    store = RunStore(copy)
    done = sorted(e for e, s in store.latest_states().items() if "always-safe" in e)
    cut, lost = done[0], done[1]
    path = store.trajectory_path(cut)
    lines = path.read_text("utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:6]), "utf-8")  # killed mid-episode: no end event
    store.trajectory_path(lost).unlink()
    store.journal(JournalEntry(episode_id=cut, status=EpisodeStatus.RUNNING))
    store.journal(JournalEntry(episode_id="zz-later.time.harmful.always-safe.r0", status="pending"))
    store.close()
    code, text, _ = _cli(["export", str(copy), "--format", "inspect", "--out", str(tmp_path / "o")])
    assert code == 0
    assert "(8 samples: 0 errored, 2 incomplete (flagged); status error)" in text
    assert "skipped 1: never started (e.g. zz-later.time.harmful.always-safe.r0)" in text
    safe = next((tmp_path / "o").glob("*always-safe*.eval"))
    log = inspect_log.read_eval_log(str(safe))
    samples = {str(s.id): s for s in log.samples}
    assert samples[cut].error is not None and "no end event" in samples[cut].error.message
    assert samples[cut].metadata["incomplete"]
    # The conversation up to the cut: system, task, and the call whose result never came.
    assert [m.role for m in samples[cut].messages] == ["system", "user", "assistant"]
    assert samples[lost].error is not None and "no trajectory" in samples[lost].error.message
    assert samples[lost].messages == [] and samples[lost].metadata["status"] == "done"
    skipped = log.eval.metadata["propensity"]["export"]["skipped"]
    assert skipped == [
        {"episode_id": "zz-later.time.harmful.always-safe.r0", "reason": "never started"}
    ]
    # Flagged episodes count in no metric.
    assert log.results.completed_samples == 6
    risky = next(s for s in log.results.scores if s.name == "risky_tool_choice")
    assert risky.metrics["count"].value == 6


def test_max_chars_cuts_and_flags(run_dir: Path, tmp_path: Path) -> None:
    whole = export_inspect(run_dir, tmp_path / "whole")  # default: 0, nothing cut
    assert all(log.truncated_messages == 0 for log in whole.logs)
    cut = export_inspect(run_dir, tmp_path / "cut", max_chars=20)
    assert all(log.truncated_messages > 0 for log in cut.logs)
    log = inspect_log.read_eval_log(str(cut.paths[0]))
    messages = [m for s in log.samples for m in s.messages]
    assert all(len(m.text) <= 20 for m in messages)
    flagged = [m for m in messages if m.metadata.get("truncated")]
    assert flagged and all(m.metadata["chars"] > 20 for m in flagged)
    assert all(len(s.input) <= 20 for s in log.samples)
    code, _, err = _cli(["export", str(run_dir), "--format", "inspect", "--max-chars", "-1"])
    assert code == 1 and "--max-chars" in err


def test_without_inspect_ai_the_command_says_how_to_install(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "inspect_ai" or m.startswith("inspect_ai.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # import inspect_ai now fails
    out = tmp_path / "out"
    code, _, err = _cli(["export", str(run_dir), "--format", "inspect", "--out", str(out)])
    assert code == 1
    assert "scripts/bootstrap.sh --extra inspect" in err
    assert "pip install 'propensity-sandbox[inspect]'" in err
    assert INSTALL_HINT in " ".join(err.split())
    assert not out.exists()
    with pytest.raises(ExportError, match="needs inspect_ai"):
        export_inspect(run_dir, out)


def test_not_a_run_directory(tmp_path: Path) -> None:
    code, _, err = _cli(["export", str(tmp_path), "--format", "inspect"])
    assert code == 1 and "not a run directory" in err


def test_injected_episodes_keep_their_attack(tmp_path: Path) -> None:
    from injection_support import write_pack

    config = RunConfig(
        suite=str(write_pack(tmp_path)),
        agents=[AgentSpec(spec="python:injection_support:same_turn")],
        cache_dir=str(tmp_path / "cache"),
    )
    result = asyncio.run(start_run(config, tmp_path / "run"))
    store = RunStore(result.run_dir)
    recorded = _scores(store)
    export = export_inspect(result.run_dir, tmp_path / "out")
    (log,) = (inspect_log.read_eval_log(str(p)) for p in export.paths)
    attacked = [s for s in log.samples if s.metadata["injection"] is not None]
    assert attacked and len(log.samples) == len(store.latest_states())
    for sample in attacked:
        started = store.read_trajectory(str(sample.id)).started
        assert started is not None and sample.metadata["injection"] == started.injection
        injection = recorded[str(sample.id)]["injection"]
        assert sample.scores["injection"].answer == injection.label
        assert sample.metadata["kind"] == "open"
    # The un-attacked episode's injection score has no value: its label stands in, marked.
    (clean,) = [s for s in log.samples if s.metadata["injection"] is None]
    assert recorded[str(clean.id)]["injection"].value is None
    assert clean.scores["injection"].value == recorded[str(clean.id)]["injection"].label
    assert clean.scores["injection"].metadata["value_recorded"] is False
    injection_metric = next(s for s in log.results.scores if s.name == "injection")
    assert injection_metric.unscored_samples == 1
    assert injection_metric.metrics["count"].value == len(attacked)
    assert any(m.metadata.get("world") for s in log.samples for m in s.messages if m.role == "tool")
    assert json.dumps(log.eval.metadata["propensity"]["config"]["agents"])


CODER_MODULE = """
from scenarios.records import Message, ToolCall


def coder(request):
    if request.episode.turn == 0:
        call = ToolCall(id="c1", name="run_python", arguments={"code": "print('x' * 50)"})
        return Message(role="assistant", content="Running it.", tool_calls=[call])
    return "Done: printed."
"""


@pytest.mark.filterwarnings("ignore:the local execution environment is NOT a security boundary")
def test_code_task_outcome_keeps_its_measured_facts(tmp_path: Path) -> None:
    (tmp_path / "inspect_export_coder.py").write_text(CODER_MODULE, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        config = RunConfig(
            suite="code-interpreter",
            agents=[AgentSpec(spec="python:inspect_export_coder:coder")],
            limit=1,
            environment="local",
            unsafe_local=True,
            cache_dir=str(tmp_path / "cache"),
        )
        result = asyncio.run(start_run(config, tmp_path / "run"))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("inspect_export_coder", None)
    store = RunStore(result.run_dir)
    recorded = _scores(store)
    export = export_inspect(result.run_dir, tmp_path / "out")
    (log,) = (inspect_log.read_eval_log(str(p)) for p in export.paths)
    assert log.samples
    for sample in log.samples:
        score = recorded[str(sample.id)]["code_execution"]
        got = sample.scores["code_execution"]
        assert (got.value, got.answer, got.metadata) == (score.value, score.label, score.details)
        assert "cpu_s" in got.metadata and "peak_memory_bytes" in got.metadata
        assert sample.metadata["kind"] == "code_task"
        (tool,) = [m for m in sample.messages if m.role == "tool"]
        execution = tool.metadata["data"]["execution"]
        assert execution["exit_code"] == 0 and tool.text.startswith("x" * 50)
        _check_conversation(sample, store.read_trajectory(str(sample.id)))
    code = next(s for s in log.results.scores if s.name == "code_execution")
    assert code.metrics["count"].value == len(log.samples)


@pytest.mark.slow
def test_a_whole_suite_exports_every_episode_and_its_aggregates(tmp_path: Path) -> None:
    """560 scripted episodes (20 scenarios x 7 variants x 2 namings x 2 agents): every one a
    sample of its agent's log, and the log's aggregates over all of them. (Time is measured by
    hand, not here: docs/inspect.md gives the figure.)"""
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe"), AgentSpec(spec="risky-at-level:3")],
        cache_dir=str(tmp_path / "cache"),
    )
    result = asyncio.run(start_run(config, tmp_path / "run"))
    assert result.summary.episodes == 560 and result.summary.errored == 0
    export = export_inspect(result.run_dir, tmp_path / "out")
    assert export.samples == 560 and [log.samples for log in export.logs] == [280, 280]
    header = inspect_log.read_eval_log(str(export.paths[1]), header_only=True)
    risky = next(s for s in header.results.scores if s.name == "risky_tool_choice")
    assert risky.metrics["count"].value == 280 and 0 < risky.metrics["mean"].value < 1
