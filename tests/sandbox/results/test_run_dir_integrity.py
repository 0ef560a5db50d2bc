"""What is read back from a run directory is checked before it is reported or exported.

- A trajectory file holding another episode's trajectory (another episode's file copied over
  it) is a ``CorruptRecordError`` naming the file and the field, treated like a corrupt or cut
  trajectory by every reader: never exported, reported or viewed as the episode it is filed
  under.
- A done episode whose scores are missing from scores.jsonl (all of them, or one evaluator's
  that its journal entry names) is counted apart (unscored, naming what it lacks), never as
  scored, flagged in the table and Inspect exports, and run again by a resume.
- Text from an agent, a tool, a model or a file never reaches the terminal with its control
  characters: they are printed as visible escapes (the run directory keeps them).
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from sandbox import RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.console import SafeConsole, make_console, markup_safe, visible
from sandbox.results.exports import ExportError, export_run
from sandbox.results.html_report import render_html_report
from sandbox.results.report import print_summary, to_csv
from sandbox.results.store import CorruptRecordError
from sandbox.results.summary import build_summary
from scenarios.records import EpisodeStatus, JournalEntry

AGENTS = ["always-safe", "risky-at-level:2"]
HOSTILE = "boom\x00\x1b[31mRED\x1b]0;pwned\x07 [bold]x[/bold] \u202eevil"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("integrity")
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec=a) for a in AGENTS],
        categories=["time"],
        limit=1,
        cache_dir=str(root / "cache"),
    )
    result = asyncio.run(start_run(config, root / "run"))
    assert result.summary.errored == 0 and result.summary.scored == result.summary.episodes
    return result.run_dir


@pytest.fixture
def run_dir(recorded: Path, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "run"
    shutil.copytree(recorded, copy)
    yield copy


def _pair(store: RunStore) -> tuple[str, str]:
    """Two done episodes of one scenario, category and naming, of different agents."""
    ids = sorted(store.latest_states())
    a = next(e for e in ids if ".always-safe." in e)
    b = a.replace(".always-safe.", ".risky-at-level-2.")
    assert b in ids
    return a, b


def _swap(run_dir: Path) -> tuple[str, str]:
    store = RunStore(run_dir)
    a, b = _pair(store)
    shutil.copyfile(store.trajectory_path(a), store.trajectory_path(b))
    return a, b


# -- another episode's trajectory ----------------------------------------------------------------


def test_another_episodes_trajectory_is_a_corrupt_record(run_dir: Path) -> None:
    a, b = _swap(run_dir)
    store = RunStore(run_dir)
    with pytest.raises(CorruptRecordError) as caught:
        store.read_trajectory(b)
    message = str(caught.value)
    assert str(store.trajectory_path(b)) in message
    assert "episode_started" in message and "episode_id" in message and a in message
    # Like a cut trajectory: not complete (a resume runs it again), counted by the summary.
    assert not store.trajectory_complete(b)
    assert store.trajectory_complete(a)
    summary = build_summary(store)
    assert summary.incomplete_trajectories == [b]


def test_another_agents_trajectory_under_the_same_id_is_a_corrupt_record(run_dir: Path) -> None:
    store = RunStore(run_dir)
    _, b = _pair(store)
    path = store.trajectory_path(b)
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert first["type"] == "episode_started" and first["agent"] == "risky-at-level:2"
    first["agent"] = "always-safe"
    path.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(CorruptRecordError) as caught:
        store.read_trajectory(b)
    assert str(path) in str(caught.value) and "agent" in str(caught.value)
    assert not store.trajectory_complete(b)


def test_the_report_names_the_swapped_episode(run_dir: Path) -> None:
    _, b = _swap(run_dir)
    out = io.StringIO()
    print_summary(build_summary(RunStore(run_dir)), Console(file=out, width=300))
    assert "cut short" in out.getvalue() and b in out.getvalue()
    assert "incomplete_trajectories" in to_csv(build_summary(RunStore(run_dir)))


def test_table_exports_refuse_a_swapped_trajectory_naming_the_file(
    run_dir: Path, tmp_path: Path
) -> None:
    _, b = _swap(run_dir)
    with pytest.raises(ExportError) as caught:
        export_run(run_dir, "jsonl", tmp_path / "out")
    assert f"{b}.jsonl" in str(caught.value) and "episode_id" in str(caught.value)


def test_html_report_shows_the_swapped_trajectory_as_unreadable(run_dir: Path) -> None:
    _swap(run_dir)
    html = render_html_report(run_dir)
    assert "unreadable_trajectory" in html and "another episode" in html


def test_inspect_export_flags_the_swapped_episode_in_its_own_agents_log(
    run_dir: Path, tmp_path: Path
) -> None:
    inspect_log = pytest.importorskip("inspect_ai.log", reason="inspect_ai is an optional extra")
    from sandbox.results.inspect_export import export_inspect

    a, b = _swap(run_dir)
    export = export_inspect(run_dir, tmp_path / "x")
    by_agent = {}
    for log in export.logs:
        read = inspect_log.read_eval_log(str(log.path))
        by_agent[read.eval.model] = read
    assert set(by_agent) == set(AGENTS)
    risky = by_agent["risky-at-level:2"]
    samples = {s.id: s for s in risky.samples or []}
    assert b in samples  # in its own agent's log, not in always-safe's
    sample = samples[b]
    assert sample.metadata["incomplete"] is True
    assert any("episode_started" in flag for flag in sample.metadata["flags"])
    assert sample.error is not None
    assert risky.status == "error"
    # A's recording is exported once, as A's, in A's agent's log.
    safe_ids = [s.id for s in by_agent["always-safe"].samples or []]
    assert a in safe_ids and b not in safe_ids
    assert by_agent["always-safe"].status == "success"


# -- done but unscored ---------------------------------------------------------------------------


def _drop_scores(run_dir: Path) -> str:
    store = RunStore(run_dir)
    _, b = _pair(store)
    kept = [
        line
        for line in store.scores_path.read_text(encoding="utf-8").splitlines()
        if json.loads(line)["episode_id"] != b
    ]
    store.scores_path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return b


def test_a_done_episode_without_scores_is_unscored_not_scored(run_dir: Path) -> None:
    b = _drop_scores(run_dir)
    store = RunStore(run_dir)
    assert b not in store.scored_episodes()
    summary = build_summary(store)
    assert summary.unscored == 1 and summary.unscored_episodes == [b]
    assert summary.scored == summary.episodes - 1
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=300))
    text = out.getvalue()
    assert "unscored (scores missing)" in text and b in text
    rows = [line.split(",") for line in to_csv(summary).splitlines()]
    assert ["all", "episodes", "unscored", "", "", "", "1", ""] == rows[-3][:8]
    html = render_html_report(run_dir)
    assert "unscored (scores missing)" in html and b in html


def test_inspect_export_flags_a_done_episode_without_scores(run_dir: Path, tmp_path: Path) -> None:
    inspect_log = pytest.importorskip("inspect_ai.log", reason="inspect_ai is an optional extra")
    from sandbox.results.inspect_export import export_inspect

    b = _drop_scores(run_dir)
    export = export_inspect(run_dir, tmp_path / "x")
    found = False
    for log in export.logs:
        read = inspect_log.read_eval_log(str(log.path))
        for sample in read.samples or []:
            if sample.id == b:
                found = True
                assert any("no scores" in flag for flag in sample.metadata["flags"])
                assert sample.metadata["incomplete"] is True
                assert read.status != "success"
    assert found


# -- done but one evaluator's scores lost ----------------------------------------------------


def _drop_one_score(run_dir: Path, evaluator: str = "risky_tool_choice") -> str:
    """Delete one evaluator's line of one done episode, keeping its other scores."""
    store = RunStore(run_dir)
    _, b = _pair(store)
    assert store.latest_states()[b].evaluators and evaluator in store.latest_states()[b].evaluators
    lines = store.scores_path.read_text(encoding="utf-8").splitlines()
    kept = [
        line
        for line in lines
        if (json.loads(line)["episode_id"], json.loads(line)["evaluator"]) != (b, evaluator)
    ]
    assert len(kept) == len(lines) - 1
    assert any(json.loads(line)["episode_id"] == b for line in kept)
    store.scores_path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return b


def test_a_done_episode_missing_one_evaluator_is_unscored_naming_it(run_dir: Path) -> None:
    b = _drop_one_score(run_dir)
    store = RunStore(run_dir)
    assert b in store.scored_episodes()  # it still has scores: "at least one" is not enough
    assert store.unscored(store.latest_states()) == {b: ["risky_tool_choice"]}
    summary = build_summary(store)
    assert summary.unscored == 1 and summary.unscored_episodes == [b]
    assert summary.unscored_missing == {b: "risky_tool_choice"}
    assert summary.scored == summary.episodes - 1
    out = io.StringIO()
    print_summary(summary, Console(file=out, width=300))
    text = out.getvalue()
    assert "unscored (scores missing)" in text
    assert f"{b} (missing risky_tool_choice)" in text
    # The table export flags the lost score instead of an unexplained empty cell.
    export_run(run_dir, "jsonl", run_dir / "x")
    rows = {
        r["episode_id"]: r
        for r in map(json.loads, (run_dir / "x" / "episodes.jsonl").read_text().splitlines())
    }
    assert rows[b]["scores_missing"] == "risky_tool_choice"
    assert rows[b]["risky_tool_choice_value"] is None and rows[b]["misaligned_called"] is None
    assert all(r["scores_missing"] is None for e, r in rows.items() if e != b)


def test_an_old_journal_without_evaluators_needs_only_one_score(run_dir: Path) -> None:
    """Journals written before entries named their evaluators stay valid: at least one
    score is all that can be checked, and none at all is "every score" missing."""
    store = RunStore(run_dir)
    lines = store.journal_path.read_text(encoding="utf-8").splitlines()
    old = []
    for line in lines:
        record = json.loads(line)
        record.pop("evaluators", None)
        old.append(json.dumps(record))
    store.journal_path.write_text("\n".join(old) + "\n", encoding="utf-8")
    assert store.unscored(store.latest_states()) == {}
    b = _drop_scores(run_dir)
    assert store.unscored(store.latest_states()) == {b: []}
    assert build_summary(store).unscored_missing == {b: "every score"}


def test_inspect_export_flags_a_done_episode_missing_one_evaluator(
    run_dir: Path, tmp_path: Path
) -> None:
    inspect_log = pytest.importorskip("inspect_ai.log", reason="inspect_ai is an optional extra")
    from sandbox.results.inspect_export import export_inspect

    b = _drop_one_score(run_dir)
    export = export_inspect(run_dir, tmp_path / "x")
    assert sum(log.incomplete for log in export.logs) == 1
    found = False
    for log in export.logs:
        read = inspect_log.read_eval_log(str(log.path))
        for sample in read.samples or []:
            if sample.id == b:
                found = True
                assert any(
                    "scores missing" in flag and "risky_tool_choice" in flag
                    for flag in sample.metadata["flags"]
                )
                assert sample.metadata["incomplete"] is True
                assert read.status != "success"
    assert found


def test_resume_runs_again_a_done_episode_missing_one_evaluator(run_dir: Path) -> None:
    from sandbox import resume_run

    b = _drop_one_score(run_dir)
    store = RunStore(run_dir)
    before = {(s.episode_id, s.evaluator) for s in store.read_scores()}
    logged: list[str] = []
    asyncio.run(resume_run(run_dir, log=logged.append))
    assert any("scores missing and run again" in m and b in m for m in logged), logged
    after = {(s.episode_id, s.evaluator) for s in store.read_scores()}
    assert (b, "risky_tool_choice") in after and before < after
    assert store.latest_states()[b].attempt == 2
    summary = build_summary(store)
    assert summary.unscored == 0 and summary.scored == summary.episodes


def test_merge_keeps_the_journal_s_evaluators(run_dir: Path, tmp_path: Path) -> None:
    from sandbox.results.merge import merge_runs

    b = _drop_one_score(run_dir)
    merge_runs([run_dir], tmp_path / "merged")
    merged = RunStore(tmp_path / "merged")
    assert merged.latest_states()[b].evaluators == RunStore(run_dir).latest_states()[b].evaluators
    assert build_summary(merged).unscored_missing == {b: "risky_tool_choice"}


# -- hostile text on the terminal ----------------------------------------------------------------


def test_visible_and_markup_safe() -> None:
    assert visible("a\x00b\x1b[31m\n\t\u202e\x85") == "a\\x00b\\x1b[31m\\n\\t\\u202e\\x85"
    assert markup_safe("[bold]x[/bold]\x1b") == "\\[bold]x\\[/bold]\\x1b"
    assert visible("plain text, ünïcode") == "plain text, ünïcode"


def test_the_cli_console_makes_control_characters_visible() -> None:
    out = io.StringIO()
    console = SafeConsole(file=out, width=200)
    console.print(f"error: {HOSTILE}\nsecond line", markup=False)
    text = out.getvalue()
    assert "\x1b" not in text and "\x00" not in text and "\u202e" not in text
    assert "\\x1b[31mRED" in text and "\nsecond line" in text
    assert isinstance(make_console(), SafeConsole)


def test_errors_from_an_agent_are_printed_escaped_and_kept_faithfully(run_dir: Path) -> None:
    store = RunStore(run_dir)
    _, b = _pair(store)
    store.journal(
        JournalEntry(
            episode_id=b,
            status=EpisodeStatus.ERRORED,
            reason="harness_error\x1b[2J",
            error=HOSTILE,
        )
    )
    store.close()
    summary = build_summary(RunStore(run_dir))
    out = io.StringIO()
    # A plain rich console (not the CLI's): the report escapes by itself.
    print_summary(summary, Console(file=out, width=300, force_terminal=True))
    text = out.getvalue()
    assert "\x00" not in text and "\u202e" not in text
    assert "\x1b[31mRED" not in text and "\x1b[2J" not in text and "\x1b]0;" not in text
    assert "\\x1b[31mRED" in text and "harness_error\\x1b[2J" in text
    assert "[bold]x[/bold]" in text  # shown as text, not taken as markup
    # The run directory keeps the text as it came.
    assert RunStore(run_dir).latest_states()[b].error == HOSTILE


def test_replay_and_resume_do_not_take_another_episode_s_trajectory_or_lost_scores(
    tmp_path: Path,
) -> None:
    """The replay source of a run directory refuses a trajectory filed under another
    episode's id (naming file and field); a resume runs again an episode whose trajectory is
    another's and one marked done whose scores were lost."""
    import asyncio

    from sandbox import RunConfig, RunStore, resume_run, start_run
    from sandbox.agents import AgentSpec
    from sandbox.replay.sources import ReplaySourceError, read_source

    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-safe")],
        limit=1,
        categories=["time"],
        include_baseline=False,
    )
    run = asyncio.run(start_run(config, tmp_path / "run")).run_dir
    store = RunStore(run)
    first, second = sorted(store.latest_states())
    store.trajectory_path(second).write_bytes(store.trajectory_path(first).read_bytes())
    with pytest.raises(ReplaySourceError, match=r"episode_started .*episode_id is"):
        read_source(run)
    lines = store.scores_path.read_text().splitlines(keepends=True)
    store.scores_path.write_text("".join(x for x in lines if f'"{first}"' not in x))
    asyncio.run(resume_run(run))
    assert {s.episode_id for s in store.read_scores()} == {first, second}
    assert all(store.trajectory_complete(e) for e in (first, second))
    assert len(read_source(run).records) == 2


def test_a_trajectory_with_another_grafted_on_is_corrupt_everywhere(tmp_path: Path) -> None:
    """Its own start, then another episode's whole trajectory appended: two starts in one
    file are two trajectories, never one episode (the graft was scored as the episode)."""
    import asyncio

    from sandbox import RunConfig, RunStore, start_run
    from sandbox.agents import AgentSpec
    from sandbox.replay.sources import ReplaySourceError, read_source
    from sandbox.results.store import CorruptRecordError

    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="always-risky"), AgentSpec(spec="always-safe")],
        limit=1,
        categories=["time"],
        include_baseline=False,
        namings=["harmful"],  # type: ignore[list-item]
    )
    run = asyncio.run(start_run(config, tmp_path / "run")).run_dir
    store = RunStore(run)
    risky, safe = sorted(store.latest_states())
    target = store.trajectory_path(risky)
    first = target.read_text().splitlines(keepends=True)[0]
    target.write_text(first + store.trajectory_path(safe).read_text())
    with pytest.raises(CorruptRecordError, match="a second start"):
        store.read_trajectory(risky)
    assert not store.trajectory_complete(risky)
    with pytest.raises(ReplaySourceError, match="a second start"):
        read_source(run)
    with pytest.raises(ReplaySourceError, match="a second start"):
        read_source(target)
