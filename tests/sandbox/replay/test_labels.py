"""sandbox.replay.labels: every label source, detected from the path, checked like user input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import EXTERNAL

from sandbox.replay import ReplaySourceError
from sandbox.replay.labels import detect_label_kind, labels_from_csv, read_labels
from scenarios.records import Score

TOOLEMU = EXTERNAL / "toolemu" / "trajectories-gpt-4o-mini"


def _scores(path: Path, scores: list[Score]) -> Path:
    path.write_text("".join(s.model_dump_json() + "\n" for s in scores), encoding="utf-8")
    return path


def test_run_directory_and_scores_file(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _scores(
        run / "scores.jsonl",
        [
            Score(episode_id="e1", evaluator="safety_judge", value=1.0),
            Score(episode_id="e1", evaluator="helpfulness_judge", value=3.0),
            Score(episode_id="e2", evaluator="safety_judge", value=None, label="judge_failed"),
            Score(episode_id="e3", evaluator="risky_tool_choice", value=1.0),
            Score(episode_id="e4", evaluator="safety_judge", value=3.0),
        ],
    )
    assert detect_label_kind(run) == "run"
    safety = read_labels(run)
    assert safety.kind == "run" and safety.labels == {"e1": 1, "e4": 3}
    assert len(safety.problems) == 1 and "e2" in safety.problems[0]
    assert read_labels(run, "helpfulness").labels == {"e1": 3}
    scores = read_labels(run / "scores.jsonl")
    assert scores.kind == "scores" and scores.labels == safety.labels


def test_csv_of_human_labels(tmp_path: Path) -> None:
    good = tmp_path / "human.csv"
    good.write_text("episode_id,label,note\ne1,0,deleted files\ne2, 3 ,\n\ne3,,unsure\n")
    result = read_labels(good)
    assert result.kind == "csv" and result.labels == {"e1": 0, "e2": 3}
    assert result.problems == [f"{good}:5: e3: no label (left unlabelled)"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("id,label\ne1,1\n", ":1: field 'episode_id': missing from the header"),
        ("episode_id,score\ne1,1\n", ":1: field 'label': missing from the header"),
        ("episode_id,label\ne1,1\ne2,risky\n", ":3: field 'label': 'risky' is not an integer"),
        ("episode_id,label\ne1,4\n", ":2: field 'label': 4 is not on the safety scale 0-3"),
        ("episode_id,label\n,1\n", ":2: field 'episode_id': empty"),
        (
            "episode_id,label\ne1,1\ne1,2\n",
            ":3: field 'episode_id': 'e1' already labelled on line 2",
        ),
        ("", ":1: empty file"),
        ("episode_id,label\ne1,+2\n", ":2: field 'label': '+2' is not an integer 0-3"),
        ("episode_id,label\ne1,\uff10\n", ":2: field 'label': '\uff10' is not an integer 0-3"),
        ("episode_id,label,label\ne1,1,2\n", ":1: field 'label': named twice in the header"),
        ('episode_id,label\na,1\n"b,2\nc,3\nd,0\n', ": not valid CSV"),
        ('episode_id,label\na,1\n"b\nc",2\n', ": field 'episode_id': holds a line break"),
    ],
)
def test_csv_errors_name_file_line_and_field(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ReplaySourceError) as caught:
        labels_from_csv(path)
    assert str(caught.value).startswith(str(path)) and where in str(caught.value)


def test_a_bad_scores_line_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "scores.jsonl"
    path.write_text(
        json.dumps({"episode_id": "e1", "evaluator": "safety_judge", "value": 1})
        + "\n"
        + json.dumps({"episode_id": "e2", "evaluator": "safety_judge", "value": "x"})
        + "\n"
        + json.dumps({"episode_id": "e3", "evaluator": "safety_judge", "value": 2})
        + "\n"
    )
    with pytest.raises(ReplaySourceError, match=r"scores.jsonl:2: field 'value'"):
        read_labels(path)


def test_missing_paths_and_unlabelled_sources_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ReplaySourceError, match="no such file"):
        read_labels(tmp_path / "absent.csv")
    with pytest.raises(ReplaySourceError):
        read_labels(tmp_path)  # no scores.jsonl and no .jsonl files


@pytest.mark.external
def test_toolemu_labels_use_the_replay_episode_ids() -> None:
    from sandbox.replay import load_recorded

    safety = read_labels(TOOLEMU)
    assert safety.kind == "recorded" and len(safety.labels) == 144 and not safety.problems
    helpfulness = read_labels(TOOLEMU, "helpfulness")
    assert set(helpfulness.labels) == set(safety.labels)
    records = {r.episode_id: r for r in load_recorded(TOOLEMU)}
    assert set(records) == set(safety.labels)
    for episode, label in safety.labels.items():
        labels = records[episode].labels
        assert labels is not None and labels.safety == label


def _judge_score(episode: str, value: float, method: str) -> str:
    return Score(
        episode_id=episode, evaluator="safety_judge", value=value, details={"method": method}
    ).model_dump_json()


def test_rule_labels_never_pass_as_a_judge_model_s(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(
        "\n".join(
            [
                _judge_score("e1", 3, "llm"),
                _judge_score("e2", 0, "rules"),
                _judge_score("e3", 2, "llm"),
            ]
        )
        + "\n"
    )
    labels = read_labels(mixed)
    assert labels.labels == {"e1": 3, "e3": 2} and not labels.rule_judge
    assert any("e2: labelled by the rule judge" in p for p in labels.problems)
    rules = tmp_path / "rules.jsonl"
    rules.write_text(_judge_score("e1", 1, "rules") + "\n" + _judge_score("e2", 0, "rules") + "\n")
    only = read_labels(rules)
    assert only.labels == {"e1": 1, "e2": 0} and only.rule_judge  # said wherever it is shown


async def test_a_run_s_errored_episodes_are_listed_not_silently_missing(tmp_path: Path) -> None:
    from sandbox.results.store import RunStore
    from scenarios.records import EpisodeStatus, JournalEntry

    run = tmp_path / "run"
    run.mkdir()
    (run / "scores.jsonl").write_text(_judge_score("e1", 3, "llm") + "\n")
    store = RunStore(run)
    store.journal(JournalEntry(episode_id="e1", status=EpisodeStatus.DONE))
    store.journal(
        JournalEntry(episode_id="e2", status=EpisodeStatus.ERRORED, reason="judge_timeout")
    )
    store.close()
    labels = read_labels(run)
    assert labels.labels == {"e1": 3}
    assert any("e2: errored (judge_timeout): no label" in p for p in labels.problems)


def test_an_out_directory_is_refused_before_any_judge_is_called(tmp_path: Path) -> None:
    from sandbox.replay.judged_run import check_out_dir

    check_out_dir(tmp_path / "new")  # missing: fine
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("mine")
    with pytest.raises(ReplaySourceError, match="not an empty directory"):
        check_out_dir(tmp_path / "busy")


@pytest.mark.external
def test_a_trajectory_labelled_twice_keeps_no_label(tmp_path: Path) -> None:
    """Two label lines with one eval_id: neither is trusted, and the problem names the lines;
    a bad recorded score is named with its label file."""
    import shutil

    dump = next(p for p in sorted(TOOLEMU.glob("*.jsonl")) if "_eval_" not in p.name)
    for source in TOOLEMU.glob(dump.stem + "*"):
        shutil.copy(source, tmp_path / source.name)
    safe = tmp_path / (dump.stem + "_eval_agent_safe.jsonl")
    lines = safe.read_text().splitlines()
    first = json.loads(lines[0])
    repeated = {**first, "eval_scores": {**first["eval_scores"], "ToolCallRisk": 3}}
    second = json.loads(lines[1])
    broken = {**second, "eval_scores": {**second["eval_scores"], "ToolCallRisk": 5}}
    safe.write_text("\n".join([lines[0], json.dumps(broken), *lines[2:], json.dumps(repeated)]))
    labels = read_labels(tmp_path / dump.name)
    assert len(labels.labels) == len(lines) - 2
    problems = " ".join(labels.problems)
    assert "already labelled on line 1" in problems and "no safety label is kept" in problems
    assert "ToolCallRisk 5 is not a score 0-3" in problems and safe.name in problems
