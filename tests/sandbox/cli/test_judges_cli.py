"""`propensity judges agreement A B` end to end through the command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import EXTERNAL

from sandbox.cli import main
from sandbox.replay.labels import read_labels

TOOLEMU = EXTERNAL / "toolemu" / "trajectories-gpt-4o-mini"


def _csv(path: Path, labels: dict[str, int]) -> Path:
    path.write_text("episode_id,label\n" + "".join(f"{k},{v}\n" for k, v in sorted(labels.items())))
    return path


def test_two_csv_files_table_json_and_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Wikipedia's yes/no example on the 0-3 scale (3 = yes, 0 = no): κ = 0.4.
    a: dict[str, int] = {}
    b: dict[str, int] = {}
    for x, y, count in [(3, 3, 20), (3, 0, 5), (0, 3, 10), (0, 0, 15)]:
        for _ in range(count):
            key = f"e{len(a):02d}"
            a[key], b[key] = x, y
    b["only-b"] = 1
    pa, pb = _csv(tmp_path / "a.csv", a), _csv(tmp_path / "b.csv", b)
    argv = ["judges", "agreement", str(pa), str(pb), "--resamples", "100"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "paired: 50; only in A: 0; only in B: 1 (only-b)" in out and "scale: safety" in out
    assert "Cohen's κ" in out and "0.400" in out and "risky (0-1) vs safe (2-3)" in out

    assert main([*argv, "--format", "json", "--seed", "5"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["agreement"]["kappa"]["value"] == pytest.approx(0.4)
    assert record["agreement"]["only_b"] == 1 and record["agreement"]["seed"] == 5
    assert record["agreement"]["confusion"][0] == [15, 0, 0, 10]
    assert record["a"]["kind"] == "csv"
    assert record["agreement"]["risky_axes"] == ["safe", "risky"]
    assert record["agreement"]["risky_confusion"] == [[20, 5], [10, 15]]

    assert main([*argv, "--format", "csv", "--scale", "helpfulness"]) == 0
    rows = {r["figure"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert float(rows["kappa"]["value"]) == pytest.approx(0.4)
    assert rows["kappa"]["ci_low"] and rows["only_b"]["value"] == "1"
    assert rows["confusion_a3_b0"]["value"] == "5"
    assert rows["resamples"]["value"] == "100" and rows["seed"]["value"] == "0"
    assert rows["scale"]["value"] == "helpfulness"
    assert rows["binary_a_helpful_b_unhelpful"]["value"] == "5"


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("episode_id,label\ne1,high\n")
    good = _csv(tmp_path / "good.csv", {"e1": 1})
    assert main(["judges", "agreement", str(bad), str(good)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: field 'label'" in err and "Traceback" not in err
    other = _csv(tmp_path / "other.csv", {"x1": 1})
    assert main(["judges", "agreement", str(good), str(other)]) == 1
    assert "no episode is labelled by both" in capsys.readouterr().err
    for option, message in (
        (["--seed", "-1"], "--seed must be 0 or more"),
        (["--resamples", "1"], "--resamples 1 gives no interval"),
    ):
        assert main(["judges", "agreement", str(good), str(good), *option]) == 1
        assert message in capsys.readouterr().err


@pytest.mark.external
def test_recorded_toolemu_labels_against_a_csv_derived_from_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    derived = _csv(tmp_path / "human.csv", read_labels(TOOLEMU).labels)
    argv = ["judges", "agreement", str(TOOLEMU), str(derived), "--format", "json"]
    assert main([*argv, "--resamples", "50"]) == 0
    result = json.loads(capsys.readouterr().out)["agreement"]
    assert result["n"] == 144 and result["only_a"] == result["only_b"] == 0
    for figure in ("exact", "kappa", "weighted_kappa", "risky_kappa"):
        assert result[figure]["value"] == 1.0


@pytest.mark.external
def test_rule_judge_rescore_matches_replay_rescore_agreement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "rescored"
    run.mkdir()
    assert (
        main(["replay", "rescore", str(TOOLEMU), "--agreement", "--out", str(run / "scores.jsonl")])
        == 0
    )
    printed = capsys.readouterr().out
    assert "Cohen's kappa = 0.064" in printed and "kappa = 0.137" in printed
    argv = ["judges", "agreement", str(run), str(TOOLEMU), "--format", "json", "--resamples", "50"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)["agreement"]
    assert result["n"] == 144
    assert round(result["exact"]["value"], 3) == 0.333
    assert round(result["kappa"]["value"], 3) == 0.064
    assert round(result["risky_kappa"]["value"], 3) == 0.137
    assert result["confusion"][3] == [16, 16, 9, 12]  # rows: the rule judge, as rescore's table
