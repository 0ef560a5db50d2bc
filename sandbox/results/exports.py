"""Flat tables of a run directory for analysis tools: one row per episode, one per event.

The run directory is the source of truth, but its shape (a journal, a scores file, one JSONL
trajectory per episode, nested records) is made for appending safely, not for a data frame.
These tables flatten it once, with stable column names, so pandas, R, DuckDB or a spreadsheet can
read a run without knowing the record models. ``load_episodes`` and ``load_events`` give the same
rows as plain dicts for code that has no pandas.

Columns are documented in docs/loading-results.md. Evaluator columns are named after the
evaluator (``risky_tool_choice_value``, ``risky_tool_choice_label``, ...), one pair for every
evaluator that scored any episode of the run, so a new evaluator needs no change here.

A branched episode (``propensity replay branch``) is described as its own agent lived it:
``turns`` counts its live turns only (not those replayed from the recording), ``llm_calls`` its
live agent calls, and ``category`` is the pressure it was actually shown (the recording's, then
the live part's), as its score counts it.
"""

from __future__ import annotations

import csv
import json
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field

from evaluators.code_execution import EVALUATOR as CODE_EXECUTION
from evaluators.risky_choice import EVALUATOR as RISKY_TOOL_CHOICE
from evaluators.risky_choice import episode_category, first_live_turn
from evaluators.world_metrics import EVALUATOR as WORLD_STATE
from sandbox.results.store import CorruptRecordError, RunStore, describe_missing, missing_scores
from scenarios.records import (
    AgentTurnEvent,
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    EpisodeStatus,
    ErrorEvent,
    JournalEntry,
    JudgeEvent,
    MessageEvent,
    PressureEvent,
    Score,
    ToolCallEvent,
    ToolResultEvent,
    Trajectory,
    WorldEvent,
)

ExportFormat = Literal["jsonl", "csv", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv", "parquet")
# Inspect AI eval logs (sandbox.results.inspect_export): not a table, so not in FORMATS.
INSPECT = "inspect"
ALL_FORMATS: tuple[str, ...] = (*FORMATS, INSPECT)
EPISODES, EVENTS = "episodes", "events"
# Tool outputs and message texts longer than this are cut (and flagged) in the events table:
# a single multi-megabyte observation should not make a table unloadable. 0 keeps everything.
DEFAULT_MAX_CHARS = 2000


class ExportError(ValueError):
    """The export cannot be written (unknown format, pyarrow missing, not a run directory)."""


class EpisodeRow(BaseModel):
    """One episode, flattened; `scores` become `<evaluator>_value` / `_label` columns."""

    episode_id: str
    scenario_id: str | None = None
    domain: str | None = None
    category: str | None = None
    naming: str | None = None
    agent: str | None = None
    repeat: int | None = None
    status: str
    end_reason: str | None = None
    error: str | None = None
    attempt: int = 1
    turns: int | None = None
    final_level: int | None = None
    misaligned_called: bool | None = None
    misaligned_tool: str | None = None
    misaligned_level: int | None = None
    world_intention: bool | None = None
    world_completion: bool | None = None
    world_task_completion: bool | None = None
    world_final_state: str | None = None
    code_outcome: str | None = None
    code_resource: str | None = None
    code_framing: str | None = None
    llm_calls: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    events: int = 0
    # A done episode whose scores are not all in scores.jsonl: the evaluators missing (comma
    # separated; "every score" when its journal entry does not name them). Its score columns
    # are then empty because they were lost, not because they do not apply. Empty otherwise.
    scores_missing: str | None = None
    scores: dict[str, tuple[float | None, str | None]] = Field(default_factory=dict, exclude=True)

    def flat(self, evaluators: Iterable[str]) -> dict[str, Any]:
        row = self.model_dump(mode="json")
        for name in evaluators:
            value, label = self.scores.get(name, (None, None))
            row[f"{name}_value"] = value
            row[f"{name}_label"] = label
        return row


class EventRow(BaseModel):
    """One trajectory event, flattened; columns that do not apply to its type are empty."""

    episode_id: str
    seq: int
    turn: int
    t: float
    type: str
    role: str | None = None
    tool: str | None = None
    tool_id: str | None = None
    call_id: str | None = None
    arguments: str | None = Field(default=None, description="the call's arguments as JSON")
    ok: bool | None = None
    error_kind: str | None = None
    risk: str | None = None
    output: str | None = None
    output_chars: int | None = None
    output_truncated: bool | None = None
    text: str | None = None
    text_truncated: bool | None = None
    level: int | None = None
    category: str | None = None
    model: str | None = None
    latency_s: float | None = None
    total_tokens: int | None = None
    judge: str | None = None
    score: float | None = None
    label: str | None = None
    state_before: str | None = None
    state_after: str | None = None
    toward_harm: bool | None = None


EPISODE_COLUMNS = [name for name in EpisodeRow.model_fields if name != "scores"]
EVENT_COLUMNS = list(EventRow.model_fields)


# -- building the rows -----------------------------------------------------------------------


def _read_trajectory(store: RunStore, episode_id: str) -> Trajectory | None:
    """The episode's events, or None for an episode whose trajectory was never written; an
    ``ExportError`` naming the file and the field for one that cannot be read (a corrupt line,
    another episode's trajectory filed under this one's id): never exported as this episode."""
    if not store.trajectory_path(episode_id).exists():
        return None
    try:
        return store.read_trajectory(episode_id)
    except CorruptRecordError as exc:
        raise ExportError(
            f"cannot export the run: {exc} (run it again with propensity run --resume RUN_DIR)"
        ) from None


def _episode_row(
    entry: JournalEntry, trajectory: Trajectory | None, scores: dict[str, Score]
) -> EpisodeRow:
    row = EpisodeRow(
        episode_id=entry.episode_id,
        status=entry.status.value,
        end_reason=entry.reason,
        error=entry.error,
        attempt=entry.attempt,
        llm_calls=entry.llm_calls,
        scores={name: (s.value, s.label) for name, s in sorted(scores.items())},
    )
    if entry.status is EpisodeStatus.DONE:
        missing = missing_scores(entry, scores)
        if missing is not None:
            row.scores_missing = describe_missing(missing)
    if entry.usage is not None:
        row.prompt_tokens = entry.usage.prompt_tokens
        row.completion_tokens = entry.usage.completion_tokens
        row.total_tokens = entry.usage.total_tokens
        row.cost_usd = entry.usage.cost_usd
    if trajectory is not None and trajectory.events:
        row.events = len(trajectory.events)
        row.started_at = trajectory.events[0].t
        row.ended_at = trajectory.events[-1].t
        started, ended = trajectory.started, trajectory.ended
        # A branched episode replayed the turns before this one from a recording: they are
        # not its agent's turns, and its category is the pressure it was shown.
        live_from = first_live_turn(started)
        if started is not None:
            row.scenario_id = started.scenario_id
            row.domain = started.domain
            row.category = episode_category(trajectory)
            row.naming = started.naming.value
            row.agent = started.agent
            row.repeat = started.repeat
        if ended is not None:
            row.end_reason = ended.reason
            row.turns = max(0, ended.turns - (live_from - 1)) if live_from else ended.turns
            row.final_level = ended.final_level
    risky = scores.get(RISKY_TOOL_CHOICE)
    if risky is not None:
        row.misaligned_called = bool(risky.value)
        row.misaligned_tool = risky.details.get("misaligned_tool")
        row.misaligned_level = risky.details.get("level")
    world = scores.get(WORLD_STATE)
    if world is not None:
        row.world_intention = bool(world.details.get("intention"))
        row.world_completion = bool(world.details.get("completion"))
        row.world_task_completion = bool(world.details.get("task_completion"))
        row.world_final_state = world.details.get("final_state")
    code = scores.get(CODE_EXECUTION)
    if code is not None:
        row.code_outcome = code.label
        row.code_resource = code.details.get("resource")
        row.code_framing = code.details.get("framing")
    return row


def _cut(text: str | None, max_chars: int) -> tuple[str | None, bool | None]:
    if text is None:
        return None, None
    if max_chars and len(text) > max_chars:
        return text[:max_chars], True
    return text, False


def _event_row(episode_id: str, event: Any, max_chars: int) -> EventRow:
    row = EventRow(
        episode_id=episode_id, seq=event.seq, turn=event.turn, t=event.t, type=event.type
    )
    text: str | None = None
    if isinstance(event, EpisodeStartedEvent):
        row.category = event.category
    elif isinstance(event, MessageEvent):
        row.role = event.message.role
        row.tool = event.message.name
        row.call_id = event.message.tool_call_id
        text = event.message.content
        pressure = event.message.meta.get("pressure")
        if isinstance(pressure, dict):
            row.category = pressure.get("category")
            row.level = pressure.get("level")
    elif isinstance(event, AgentTurnEvent):
        row.model = event.model
        row.latency_s = event.latency_s
        row.total_tokens = event.usage.total_tokens if event.usage is not None else None
    elif isinstance(event, ToolCallEvent):
        row.tool = event.call.name
        row.call_id = event.call.id
        row.level = event.level
        if event.call.raw_arguments is not None:
            row.arguments = event.call.raw_arguments
        else:
            row.arguments = json.dumps(event.call.arguments, sort_keys=True, ensure_ascii=False)
    elif isinstance(event, ToolResultEvent):
        result = event.result
        row.tool, row.tool_id, row.call_id = result.name, result.tool_id, result.call_id
        row.ok = result.ok
        row.error_kind = result.error_kind.value if result.error_kind else None
        row.risk = result.risk.value if result.risk else None
        row.level = event.level
        row.output_chars = len(result.output)
        row.output, row.output_truncated = _cut(result.output, max_chars)
    elif isinstance(event, PressureEvent):
        row.category, row.level = event.category, event.level
        text = event.text
    elif isinstance(event, ErrorEvent):
        row.ok = False
        row.error_kind = event.kind
        text = event.message
    elif isinstance(event, EpisodeEndedEvent):
        row.label = event.status.value
        row.level = event.final_level
        text = event.reason
    elif isinstance(event, JudgeEvent):
        row.judge, row.score, row.label = event.judge, event.score, event.label
        text = json.dumps(event.verdict, sort_keys=True, ensure_ascii=False)
    elif isinstance(event, WorldEvent):
        row.call_id, row.tool_id = event.call_id, event.tool_id
        row.state_before, row.state_after = event.state_before, event.state_after
        row.toward_harm = event.toward_harm
    row.text, row.text_truncated = _cut(text, max_chars)
    return row


def _store(run_dir: Path | str) -> RunStore:
    store = RunStore(run_dir)
    if not store.exists():
        raise ExportError(f"{run_dir} is not a run directory (no manifest.json)")
    return store


def _scores_by_episode(store: RunStore) -> dict[str, dict[str, Score]]:
    by_episode: dict[str, dict[str, Score]] = {}
    for score in store.read_scores():
        by_episode.setdefault(score.episode_id, {})[score.evaluator] = score
    return by_episode


def episode_rows(run_dir: Path | str) -> tuple[list[EpisodeRow], list[str]]:
    """Episode records of every journalled episode, and the evaluators that scored any."""
    store = _store(run_dir)
    scores = _scores_by_episode(store)
    rows = [
        _episode_row(entry, _read_trajectory(store, eid), scores.get(eid, {}))
        for eid, entry in sorted(store.latest_states().items())
    ]
    evaluators = sorted({name for row in rows for name in row.scores})
    return rows, evaluators


def event_rows(run_dir: Path | str, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[EventRow]:
    """Event records of every journalled episode, in episode then sequence order."""
    store = _store(run_dir)
    rows: list[EventRow] = []
    for episode_id in sorted(store.latest_states()):
        trajectory = _read_trajectory(store, episode_id)
        if trajectory is not None:
            rows.extend(_event_row(episode_id, e, max_chars) for e in trajectory.events)
    return rows


def load_episodes(run_dir: Path | str) -> list[dict[str, Any]]:
    """The episode table as plain dicts (JSON types; None for empty): no pandas needed."""
    rows, evaluators = episode_rows(run_dir)
    return [row.flat(evaluators) for row in rows]


def load_events(run_dir: Path | str, *, max_chars: int = DEFAULT_MAX_CHARS) -> list[dict[str, Any]]:
    """The event table as plain dicts; texts and outputs cut at ``max_chars`` (0: never)."""
    return [row.model_dump(mode="json") for row in event_rows(run_dir, max_chars=max_chars)]


# -- writing ---------------------------------------------------------------------------------


def csv_cell(value: Any) -> str:
    """How a value is written to CSV: empty for None, true/false, JSON for nested values."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_cell(row.get(column)) for column in columns])


def _scalar_type(annotation: Any) -> type:
    """The scalar type behind an annotation such as `int | None`."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _scalar_type(inner[0]) if len(inner) == 1 else str
    return annotation if isinstance(annotation, type) else str


def _column_types(model: type[BaseModel], columns: list[str]) -> dict[str, type]:
    """Column types from the row model, so parquet columns are typed even when all empty."""
    types_: dict[str, type] = {}
    for column in columns:
        field = model.model_fields.get(column)
        if field is not None:
            types_[column] = _scalar_type(field.annotation)
        else:  # an evaluator column
            types_[column] = float if column.endswith("_value") else str
    return types_


def _pyarrow() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, or an ExportError that says how to get them."""
    try:
        import pyarrow as pa  # type: ignore[import-not-found,unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ExportError(
            "--format parquet needs pyarrow, which is not installed "
            "(pip install pyarrow, or use --format jsonl or csv)"
        ) from None
    return pa, pq


def parquet_available() -> bool:
    """Whether `--format parquet` can work here (pyarrow is optional, never a dependency)."""
    try:
        _pyarrow()
    except ExportError:
        return False
    return True


def _write_parquet(path: Path, column_types: dict[str, type], rows: list[dict[str, Any]]) -> None:
    pa, pq = _pyarrow()
    arrow = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
    schema = pa.schema(
        [(name, arrow.get(kind, pa.string())) for name, kind in column_types.items()]
    )
    columns = {name: [row.get(name) for row in rows] for name in column_types}
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)


def export_run(
    run_dir: Path | str,
    fmt: ExportFormat,
    out_dir: Path | str | None = None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> list[Path]:
    """Write `episodes.<fmt>` and `events.<fmt>` (default: into RUN_DIR/exports); their paths.

    Inspect AI eval logs are written by ``sandbox.results.inspect_export.export_inspect``.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    if fmt == "parquet":
        _pyarrow()  # fail before writing anything
    target = Path(out_dir) if out_dir is not None else Path(run_dir) / "exports"
    records, evaluators = episode_rows(run_dir)
    episodes = [row.flat(evaluators) for row in records]
    episode_columns = [
        *EPISODE_COLUMNS,
        *(f"{name}_{part}" for name in evaluators for part in ("value", "label")),
    ]
    events = load_events(run_dir, max_chars=max_chars)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, model, columns, rows in (
        (EPISODES, EpisodeRow, episode_columns, episodes),
        (EVENTS, EventRow, EVENT_COLUMNS, events),
    ):
        path = target / f"{name}.{fmt}"
        if fmt == "jsonl":
            _write_jsonl(path, rows)
        elif fmt == "csv":
            _write_csv(path, columns, rows)
        else:
            _write_parquet(path, _column_types(model, columns), rows)
        written.append(path)
    return written
