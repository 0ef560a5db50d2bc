"""Records and helpers shared by every recorded-input reader of :mod:`sandbox.replay.sources`.

Replay starts from what was recorded, so every source is converted into our ``Trajectory``
without inventing anything: values that have no place in our records (an emulator's thoughts,
the exact argument text the agent wrote, the recording harness's own verdicts) are kept beside
them in ``meta``/``data`` so nothing is lost, and every record names the file and line it came
from so a surprising score can be traced back to its source. This module holds what the format
readers share and is tied to no source format: the :class:`Recorded` record and its
:class:`LoadResult`, :class:`ReplaySourceError` (file and line of every problem), the lossless
reading of a call's argument text, and the JSON-lines and event-numbering helpers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from evaluators.judges import JudgeInput
from scenarios.model import Scenario
from scenarios.records import EpisodeStatus, Trajectory

# Imported events carry t=0: a wall-clock stamp taken at import time would make two imports of
# the same file differ, and the source formats record no event times.
T0 = 0.0

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class ReplaySourceError(ValueError):
    """A source that cannot be read; the message names the file and (1-based) line, or the
    record within the file (``record``: e.g. an Inspect log's sample id) for formats that are
    not read line by line."""

    def __init__(
        self, path: Path | str, line: int | None, problem: str, *, record: str | None = None
    ) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        if record is not None:
            where = f"{where}:{record}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.record = record
        self.problem = problem


class SourceFormat(StrEnum):
    RUN = "run"
    TRAJECTORY = "trajectory"
    TOOLEMU = "toolemu"
    PROPENSITYBENCH = "propensitybench"
    INSPECT = "inspect"


RecordKind = Literal["propensity", "open", "code_task", "unknown"]


class RecordedLabels(BaseModel):
    """Verdicts the recording harness gave, on ToolEmu's 0-3 scales (3 = safe / helpful)."""

    safety: int | None = Field(default=None, ge=0, le=3)
    helpfulness: int | None = Field(default=None, ge=0, le=3)
    safety_text: str | None = None
    helpfulness_text: str | None = None
    # Who gave them, e.g. the label file, or "run judge events".
    origin: str = ""
    # Why a label is missing or was not trusted (missing line, invalid score, ...).
    problems: list[str] = Field(default_factory=list)


class Recorded(BaseModel):
    """One recorded episode, ready to rescore and re-verify."""

    source_format: SourceFormat
    source_file: str
    # 1-based line of the source record; None when the record is a whole file (our trajectories).
    source_line: int | None = None
    kind: RecordKind = "unknown"
    trajectory: Trajectory
    # The scenario the episode ran, when it can be rebuilt (shared by records of one pack).
    scenario: Scenario | None = None
    # What the safety/helpfulness judges need, for open (ToolEmu-style) episodes.
    judge_input: JudgeInput | None = None
    labels: RecordedLabels | None = None
    # The run directory of our own trajectories (its manifest configures a sandbox replay).
    run_dir: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def episode_id(self) -> str:
        return self.trajectory.episode_id

    @property
    def status(self) -> EpisodeStatus | None:
        ended = self.trajectory.ended
        return ended.status if ended else None


class LoadResult(BaseModel):
    records: list[Recorded] = Field(default_factory=list)
    # Problems that did not stop the import (label lines missing or invalid, skipped files).
    problems: list[str] = Field(default_factory=list)


# -- arguments --------------------------------------------------------------------------------


def parse_arguments(text: str) -> tuple[dict[str, Any], str | None]:
    """The arguments object of a call written as text, or ``({}, text)`` when it is not one.

    Whitespace around the object and a Markdown code fence are tolerated (ToolEmu agents end
    their Action Input with a newline); anything else is kept verbatim as raw text, which our
    tool layer answers with a corrective error rather than a guess.
    """
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    try:
        value = json.loads(stripped)
    except (json.JSONDecodeError, RecursionError):
        return {}, text
    if isinstance(value, dict):
        return value, None
    return {}, text


# -- JSON lines ---------------------------------------------------------------------------------

# What a JSON line nested past the parser's recursion limit is called.
TOO_DEEP = "JSON nested too deeply to be read"


def first_record(path: Path) -> tuple[int, Any] | None:
    """The (1-based) line number and value of the first non-blank line, None for an empty file;
    a first line that is not JSON is an error naming it."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                return number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReplaySourceError(path, number, f"not a JSON line ({exc.msg})") from None
            except RecursionError:
                raise ReplaySourceError(path, number, TOO_DEEP) from None
    return None


def first_object(path: Path) -> tuple[int, dict[str, Any]] | None:
    """:func:`first_record` for format detection: None unless ``path`` is a file whose first
    record is a JSON object (what is wrong with it is reported once no reader claims it)."""
    if not path.is_file():
        return None
    try:
        first = first_record(path)
    except ReplaySourceError:
        return None
    if first is None or not isinstance(first[1], dict):
        return None
    return first[0], first[1]


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReplaySourceError(path, number, f"not a JSON line ({exc.msg})") from None
            except RecursionError:
                raise ReplaySourceError(path, number, TOO_DEEP) from None


# -- error text -------------------------------------------------------------------------------

_PYDANTIC_URL = re.compile(
    r"^\s*For further information visit https?://errors\.pydantic\.dev/\S*\s*$"
)


def strip_pydantic_urls(text: str) -> str:
    """``text`` without pydantic's "For further information visit ..." lines."""
    return "\n".join(line for line in text.splitlines() if not _PYDANTIC_URL.match(line))


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """A pydantic error location as a field path (``messages[0].content``), without the
    validator names pydantic puts in it (``function-wrap[_wrap()]``)."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif "[" in part or "(" in part:
            continue
        else:
            path += f".{part}" if path else part
    return path


def validation_problem(exc: ValidationError, limit: int = 3) -> str:
    """A pydantic validation error as ``field: problem`` items (at most ``limit`` of them, and
    how many more), without pydantic's links."""
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:limit]:
        where = field_path(error.get("loc", ()))
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)


def digest(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:10]


class Builder:
    """Numbers events as our trajectory writer does (seq from 0)."""

    def __init__(self, episode_id: str) -> None:
        self.trajectory = Trajectory(episode_id=episode_id)

    def add(self, event: Any) -> None:
        event.seq = len(self.trajectory.events)
        self.trajectory.events.append(event)
