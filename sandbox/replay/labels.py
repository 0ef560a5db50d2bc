"""Label sources for judge agreement: one episode id → one label on ToolEmu's 0-3 scales.

``propensity judges agreement A B`` compares two of these for the same trajectories. Each
source is read by one small function, and :func:`read_labels` picks it from the path the way
the replay sources detect their formats (:mod:`sandbox.replay.sources`):

* a **run directory** (ours, or a rescore output written as a run directory): any directory
  holding ``scores.jsonl``; the label is the ``safety_judge`` / ``helpfulness_judge`` score
  (:func:`labels_from_run`);
* a **scores file**: JSONL of score records, as ``propensity replay rescore --out`` writes
  (:func:`labels_from_scores`);
* a **recorded source** with labels, e.g. a ToolEmu dump (or a directory of dumps) whose
  ``*_eval_agent_safe.jsonl`` / ``*_eval_agent_help_ignore_safety.jsonl`` files hold the
  labels: read by the replay sources, so the episode ids are the ones ``replay rescore`` gives
  (:func:`labels_from_recorded`);
* a **CSV of human labels** with the columns ``episode_id,label`` (more columns, e.g. notes,
  are allowed and ignored), checked like user input: every error names the file, the line and
  the field (:func:`labels_from_csv`).

Problems that leave one episode unlabelled (a judge that gave no score, a blank label) are
listed in :attr:`LabelSet.problems`, never turned into a label.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from evaluators.judges.records import HELPFULNESS_EVALUATOR, SAFETY_EVALUATOR
from sandbox.replay.sources import ReplaySourceError, read_source
from sandbox.results.store import SCORES, RunStore
from scenarios.records import EpisodeStatus, Score

__all__ = [
    "LabelKind",
    "LabelScale",
    "LabelSet",
    "detect_label_kind",
    "judges_in",
    "labels_from_csv",
    "labels_from_recorded",
    "labels_from_run",
    "labels_from_scores",
    "read_labels",
]

LabelScale = Literal["safety", "helpfulness"]
LabelKind = Literal["run", "scores", "recorded", "csv"]
SCALE_VALUES = (0, 1, 2, 3)
CSV_COLUMNS = ("episode_id", "label")
_EVALUATORS: dict[str, str] = {"safety": SAFETY_EVALUATOR, "helpfulness": HELPFULNESS_EVALUATOR}


class LabelSet(BaseModel):
    """Labels of one source: episode id → 0-3 label on ``scale``."""

    source: str
    kind: LabelKind
    scale: LabelScale
    labels: dict[str, int] = Field(default_factory=dict)
    # Episodes the source names but gives no usable label, and why (file:line: problem).
    problems: list[str] = Field(default_factory=list)
    # Every label came from the rule judge (a keyword heuristic, not validated): said wherever
    # the source is shown. A source mixing rule labels into a judge model's leaves them out.
    rule_judge: bool = False


def judges_in(path: Path | str, scale: LabelScale = "safety") -> list[str]:
    """The panel judges whose labels on ``scale`` a run directory or scores file holds (the
    ``MODEL`` of its ``safety_judge@MODEL`` scores), sorted; [] for other sources."""
    path = Path(path)
    kind = detect_label_kind(path)
    if kind not in ("run", "scores"):
        return []
    scores = path / SCORES if kind == "run" else path
    prefix = _EVALUATORS[scale] + "@"
    found: set[str] = set()
    for line in scores.read_text(encoding="utf-8").splitlines():
        try:
            evaluator = json.loads(line).get("evaluator")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(evaluator, str) and evaluator.startswith(prefix):
            found.add(evaluator.removeprefix(prefix))
    return sorted(found)


def _score_label(value: float | None) -> int | None:
    if value is None or not float(value).is_integer() or int(value) not in SCALE_VALUES:
        return None
    return int(value)


def labels_from_scores(
    path: Path, scale: LabelScale = "safety", *, evaluator: str | None = None
) -> LabelSet:
    """Labels from a JSONL file of score records: the ``safety_judge`` (or
    ``helpfulness_judge``) score of each episode, or ``evaluator``'s when given. A score
    without a 0-3 value (a judge that did not answer) is a problem, not a label; an episode
    scored twice keeps its last score (a problem is noted when the two differ)."""
    name = evaluator or _EVALUATORS[scale]
    result = LabelSet(source=str(path), kind="scores", scale=scale)
    by_rules: set[str] = set()
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            score = Score.model_validate_json(line)
        except ValidationError as exc:
            if number == len(lines):  # a torn last line (a write cut by a kill)
                result.problems.append(f"{path}:{number}: torn last line skipped")
                continue
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "record"
            raise ReplaySourceError(
                path, number, f"field {field!r}: {first['msg']} (not a score record)"
            ) from None
        if score.evaluator != name:
            continue
        label = _score_label(score.value)
        if label is None:
            result.problems.append(
                f"{path}:{number}: {score.episode_id}: {name} has no 0-3 value "
                f"({score.value!r}, label {score.label!r})"
            )
            result.labels.pop(score.episode_id, None)
            continue
        previous = result.labels.get(score.episode_id)
        if previous is not None and previous != label:
            result.problems.append(
                f"{path}:{number}: {score.episode_id}: scored again ({previous} then {label}); "
                "the last score is kept"
            )
        result.labels[score.episode_id] = label
        if score.details.get("method") == "rules":
            by_rules.add(score.episode_id)
        else:
            by_rules.discard(score.episode_id)
    return _separate_rule_labels(result, by_rules)


def _separate_rule_labels(result: LabelSet, by_rules: set[str]) -> LabelSet:
    """A judge model's labels never include the rule judge's: where both are present the rule
    labels are left out (and listed); a source of rule labels only is marked as such."""
    if not by_rules:
        return result
    if by_rules >= set(result.labels):
        return result.model_copy(update={"rule_judge": True})
    for episode in sorted(by_rules):
        del result.labels[episode]
        result.problems.append(
            f"{result.source}: {episode}: labelled by the rule judge (a keyword heuristic, not "
            "validated), not by the judge model: left out"
        )
    return result


def labels_from_run(
    path: Path, scale: LabelScale = "safety", *, evaluator: str | None = None
) -> LabelSet:
    """Labels from a run directory (or a rescore output directory): its ``scores.jsonl``."""
    scores = path / SCORES
    if not scores.is_file():
        raise ReplaySourceError(path, None, f"no {SCORES}: not a run or rescore directory")
    result = labels_from_scores(scores, scale, evaluator=evaluator)
    try:
        states = RunStore(path).latest_states()
    except (OSError, ValueError):
        states = {}
    errored = [
        f"{path}: {eid}: errored ({entry.reason or 'error'}): no label"
        for eid, entry in sorted(states.items())
        if entry.status is EpisodeStatus.ERRORED and eid not in result.labels
    ]
    return result.model_copy(
        update={"source": str(path), "kind": "run", "problems": [*result.problems, *errored]}
    )


def labels_from_recorded(path: Path, scale: LabelScale = "safety") -> LabelSet:
    """Labels the recording harness gave (ToolEmu's evaluator files, joined by the replay
    sources), keyed by the episode ids the replay sources give."""
    loaded = read_source(path)
    result = LabelSet(source=str(path), kind="recorded", scale=scale)
    for record in loaded.records:
        recorded = record.labels
        label = getattr(recorded, scale) if recorded is not None else None
        if label is None:
            where = f"{record.source_file}:{record.source_line}" if record.source_line else ""
            # The label file's own notes for this scale (ToolEmu: the bad value and its line).
            mark = {"safety": "_eval_agent_safe", "helpfulness": "_eval_agent_help"}[scale]
            notes = recorded.problems if recorded is not None else []
            why = [n for n in notes if mark in n or f"no {scale} label" in n]
            result.problems.append(
                f"{where or record.source_file}: {record.episode_id}: no recorded {scale} label"
                + (f" ({'; '.join(why)})" if why else "")
            )
            continue
        result.labels[record.episode_id] = int(label)
    if not result.labels:
        raise ReplaySourceError(
            path,
            None,
            f"no recorded {scale} labels in {len(loaded.records)} episode(s) (a ToolEmu dump "
            "needs its *_eval_agent_*.jsonl label files beside it)",
        )
    return result


def labels_from_csv(path: Path, scale: LabelScale = "safety") -> LabelSet:
    """Human labels from a CSV file with the header ``episode_id,label``.

    Each row is one episode: ``episode_id`` non-empty and not repeated, ``label`` an integer
    0-3 on ``scale`` (3 = safe / helpful, as ToolEmu's scales). A blank label means "not
    labelled": noted as a problem and skipped. Anything else wrong is an error naming the
    file, the line and the field.
    """
    result = LabelSet(source=str(path), kind="csv", scale=scale)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReplaySourceError(path, None, f"not UTF-8 text ({exc.reason})") from None
    # strict: an unterminated quote is an error, not a field swallowing the rows after it.
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise ReplaySourceError(path, 1, f"the header is not valid CSV ({exc})") from None
    if not header:
        raise ReplaySourceError(path, 1, "empty file: expected the header episode_id,label")
    repeated = sorted({h for h in header if header.count(h) > 1 and h})
    if repeated:
        raise ReplaySourceError(
            path, 1, f"field {repeated[0]!r}: named twice in the header ({','.join(header)})"
        )
    reader.fieldnames = header
    for column in CSV_COLUMNS:
        if column not in header:
            raise ReplaySourceError(
                path, 1, f"field {column!r}: missing from the header ({','.join(header)})"
            )
    seen: dict[str, int] = {}
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ReplaySourceError(
                path,
                reader.line_num,
                f"not valid CSV ({exc}): a quote opened and never closed, on this line or above",
            ) from None
        number = reader.line_num
        if None in row:
            raise ReplaySourceError(path, number, "more values than header columns")
        episode = (row.get("episode_id") or "").strip()
        raw = (row.get("label") or "").strip()
        if not episode and not raw and not any((v or "").strip() for v in row.values()):
            continue  # a blank line
        if not episode:
            raise ReplaySourceError(path, number, "field 'episode_id': empty")
        if any(c in episode for c in "\r\n"):
            raise ReplaySourceError(
                path,
                number,
                "field 'episode_id': holds a line break (a quote opened and closed rows later?)",
            )
        if episode in seen:
            raise ReplaySourceError(
                path,
                number,
                f"field 'episode_id': {episode!r} already labelled on line {seen[episode]}",
            )
        seen[episode] = number
        if not raw:
            result.problems.append(f"{path}:{number}: {episode}: no label (left unlabelled)")
            continue
        if not re.fullmatch(r"[0-9]+", raw, flags=re.ASCII):  # no sign, no other digits
            raise ReplaySourceError(path, number, f"field 'label': {raw!r} is not an integer 0-3")
        label = int(raw)
        if label not in SCALE_VALUES:
            raise ReplaySourceError(
                path, number, f"field 'label': {label} is not on the {scale} scale 0-3"
            )
        result.labels[episode] = label
    return result


def _first_json(path: Path) -> object | None:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                try:
                    value: object = json.loads(line)
                except json.JSONDecodeError:
                    return None
                return value
    return None


def detect_label_kind(path: Path) -> LabelKind:
    """Which reader reads ``path``: a directory with ``scores.jsonl`` is a run, a ``.csv`` file
    is human labels, a JSONL file whose first record is a score (``episode_id`` and
    ``evaluator``) is a scores file, and anything else is a recorded source for the replay
    readers (which explain what they do not recognise)."""
    if path.is_dir():
        return "run" if (path / SCORES).is_file() else "recorded"
    if not path.exists():
        raise ReplaySourceError(path, None, "no such file or directory")
    if path.suffix.lower() == ".csv":
        return "csv"
    first = _first_json(path)
    if isinstance(first, dict) and "evaluator" in first and "episode_id" in first:
        return "scores"
    return "recorded"


def read_labels(
    path: Path | str, scale: LabelScale = "safety", *, evaluator: str | None = None
) -> LabelSet:
    """The labels at ``path`` on ``scale``, from whichever source it is
    (:func:`detect_label_kind`). ``evaluator`` picks another score name in run directories and
    scores files (e.g. a re-judging's own evaluator name)."""
    path = Path(path)
    kind = detect_label_kind(path)
    if kind == "run":
        return labels_from_run(path, scale, evaluator=evaluator)
    if kind == "scores":
        return labels_from_scores(path, scale, evaluator=evaluator)
    if kind == "csv":
        return labels_from_csv(path, scale)
    return labels_from_recorded(path, scale)
