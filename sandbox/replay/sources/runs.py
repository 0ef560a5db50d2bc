"""Reading our own recorded runs: a run directory, or one trajectory file, into :class:`Recorded`.

The format is the one this sandbox writes (:mod:`sandbox.results.store`): a run directory holds
``manifest.json``, a ``journal.jsonl`` and ``trajectories/<episode_id>.jsonl``, one trajectory
event per line (:mod:`scenarios.records`). A run directory is recognised by its manifest, a
single trajectory file by its first line being one of our events; the manifest names the pack
whose scenarios the records are scored against, and the judge events a run appended become the
records' labels. Every episode the journal calls done must have its trajectory.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from evaluators.judges import HELPFULNESS_EVALUATOR, SAFETY_EVALUATOR, JudgeInput
from sandbox.replay.sources.common import (
    LoadResult,
    Recorded,
    RecordedLabels,
    RecordKind,
    ReplaySourceError,
    SourceFormat,
    first_object,
    validation_problem,
)
from sandbox.results.store import (
    JOURNAL,
    MANIFEST,
    TRAJECTORIES,
    CorruptRecordError,
    Manifest,
    RunStore,
)
from sandbox.runtime.kinds.base import BUILTIN_KINDS
from sandbox.runtime.kinds.open import judge_input_of
from sandbox.runtime.runs import pack_source
from scenarios.loader import ScenarioLoadError, load_pack
from scenarios.model import Pack
from scenarios.records import EpisodeStatus, Event, JudgeEvent, Trajectory

__all__ = [
    "detect_run",
    "detect_trajectory_file",
    "read_run",
    "read_trajectory_file",
    "run_dir_of",
]

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)

_EVENT_TYPES = frozenset(
    {
        "episode_started",
        "message",
        "agent_turn",
        "tool_call",
        "tool_result",
        "pressure",
        "error",
        "episode_ended",
        "judge",
        "world",
    }
)


def detect_run(path: Path) -> bool:
    """A run directory: one holding a manifest and what a run records beside it (its
    ``journal.jsonl`` or its ``trajectories/``). A folder holding a ``manifest.json`` and
    neither (a manifest copied beside exported logs) is read as a folder of sources, its
    manifest skipped with a note (:func:`sandbox.replay.sources.registry.read_source`)."""
    return (
        path.is_dir()
        and (path / MANIFEST).is_file()
        and ((path / JOURNAL).is_file() or (path / TRAJECTORIES).is_dir())
    )


def detect_trajectory_file(path: Path) -> bool:
    """A file whose first record is one of our trajectory events."""
    first = first_object(path)
    return first is not None and first[1].get("type") in _EVENT_TYPES


def run_dir_of(path: Path | str) -> Path | None:
    """The run directory ``path`` is (one with a manifest) or holds a trajectory of, else None.
    Its manifest names the plugins to load before the run's tools can be rebuilt."""
    path = Path(path)
    if path.is_dir():
        return path if (path / MANIFEST).is_file() else None
    run_dir = path.parent.parent
    if path.parent.name == TRAJECTORIES and (run_dir / MANIFEST).is_file():
        return run_dir
    return None


def _read_events(path: Path) -> list[Event]:
    events: list[Event] = []
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(_EVENT.validate_json(line))
        except ValidationError as exc:
            if number == len(lines):  # a torn last line: the write was cut by a kill
                break
            raise ReplaySourceError(
                path, number, f"not a trajectory event: {validation_problem(exc)}"
            ) from None
    return events


@lru_cache(maxsize=32)
def _pack(source: str) -> Pack:
    return load_pack(source)


def _judge_labels(trajectory: Trajectory) -> RecordedLabels | None:
    """The verdicts a run's judges appended to the trajectory, if any."""
    found: dict[str, JudgeEvent] = {}
    for event in trajectory.events:
        if isinstance(event, JudgeEvent):
            found[event.judge] = event
    if not found:
        return None
    safety, helpfulness = found.get(SAFETY_EVALUATOR), found.get(HELPFULNESS_EVALUATOR)

    def _score(event: JudgeEvent | None) -> int | None:
        return int(event.score) if event is not None and event.score is not None else None

    return RecordedLabels(
        safety=_score(safety),
        helpfulness=_score(helpfulness),
        safety_text=safety.label if safety else None,
        helpfulness_text=helpfulness.label if helpfulness else None,
        origin="run judge events (method: "
        + ", ".join(sorted({str(e.verdict.get("method")) for e in found.values()}))
        + ")",
    )


class _RunContext:
    """What the trajectories of one run share: the manifest and the pack, loaded once."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        try:
            self.manifest: Manifest | None = Manifest.model_validate_json(
                (run_dir / MANIFEST).read_bytes()
            )
        except OSError as exc:
            raise ReplaySourceError(
                run_dir / MANIFEST, None, f"unreadable manifest: {exc}"
            ) from None
        except ValidationError as exc:
            raise ReplaySourceError(
                run_dir / MANIFEST, None, f"not a run manifest: {validation_problem(exc)}"
            ) from None
        self.pack: Pack | None = None
        self.problem: str | None = None
        try:
            self.pack = _pack(pack_source(self.manifest))
        except ScenarioLoadError as exc:
            self.problem = f"pack of run {run_dir} cannot be loaded: {exc}"
        self.scenarios = {s.id: s for s in self.pack.scenarios} if self.pack else {}
        self.code_tasks = {t.id for t in self.pack.code_tasks} if self.pack else set()
        self.judge_inputs: dict[str, JudgeInput] = {}
        self.plugin_episodes: dict[str, int] = {}  # plugin kind -> episodes seen

    def plugin_problems(self) -> list[str]:
        """What a reader must be told of the plugin kinds' episodes it read."""
        return [
            f"{n} episode(s) of kind {kind!r} are not rescored: a plugin kind's scores come from "
            "its own scorer, which replay does not run (it imports no user code); only their "
            "protocol health is"
            for kind, n in sorted(self.plugin_episodes.items())
        ]

    def record(self, path: Path, trajectory: Trajectory) -> Recorded:
        started = trajectory.started
        scenario_id = started.scenario_id if started else None
        scenario = self.scenarios.get(scenario_id) if scenario_id else None
        kind: RecordKind = "unknown"
        judge_input = None
        if started is not None and started.kind not in (None, *BUILTIN_KINDS):
            # A plugin kind's episode: scored by that kind's own scorer, which replay does not
            # run (it imports no user code); never rescored as if it were a built-in kind.
            self.plugin_episodes[started.kind] = self.plugin_episodes.get(started.kind, 0) + 1
            scenario = None
        elif scenario is not None:
            kind = scenario.kind
            if scenario.kind == "open":
                judge_input = self.judge_inputs.get(scenario.id)
                if judge_input is None:
                    judge_input = self.judge_inputs[scenario.id] = judge_input_of(scenario)
        elif scenario_id in self.code_tasks:
            kind = "code_task"
        meta: dict[str, Any] = {}
        if self.manifest is not None:
            meta["run_id"] = self.manifest.run_id
            meta["pack"] = self.manifest.pack
        if self.problem:
            meta["problem"] = self.problem
        return Recorded(
            source_format=SourceFormat.RUN,
            source_file=str(path),
            kind=kind,
            trajectory=trajectory,
            scenario=scenario,
            judge_input=judge_input,
            labels=_judge_labels(trajectory),
            run_dir=str(self.run_dir),
            meta=meta,
        )


def read_run(run_dir: Path) -> LoadResult:
    context = _RunContext(run_dir)
    result = LoadResult(problems=[context.problem] if context.problem else [])
    # Every episode the journal calls done must have its trajectory: a missing one is refused,
    # never silently left out of a re-scoring.
    try:
        done = {
            eid
            for eid, entry in RunStore(run_dir).latest_states().items()
            if entry.status is EpisodeStatus.DONE
        }
    except (OSError, ValueError) as exc:
        raise ReplaySourceError(run_dir / "journal.jsonl", None, str(exc)[:300]) from None
    missing = sorted(e for e in done if not (run_dir / TRAJECTORIES / f"{e}.jsonl").is_file())
    if missing:
        raise ReplaySourceError(
            run_dir,
            None,
            f"{len(missing)} episode(s) the journal calls done have no trajectory "
            f"({', '.join(missing[:3])}); re-run them with propensity run --resume",
        )
    store = RunStore(run_dir)
    for path in sorted((run_dir / TRAJECTORIES).glob("*.jsonl")):
        events = _read_events(path)
        try:  # another episode's trajectory filed under this one's id is not this episode
            store.check_identity(path, path.stem, events)
        except CorruptRecordError as exc:
            raise ReplaySourceError(path, None, str(exc).removeprefix(f"{path}: ")) from None
        trajectory = Trajectory(episode_id=path.stem, events=events)
        result.records.append(context.record(path, trajectory))
    result.problems.extend(context.plugin_problems())
    return result


def read_trajectory_file(path: Path) -> LoadResult:
    trajectory = Trajectory(episode_id=path.stem, events=_read_events(path))
    started = trajectory.started
    if started is not None:
        trajectory.episode_id = started.episode_id
    run_dir = path.parent.parent
    try:  # one episode per file: two starts are two trajectories run together
        RunStore(run_dir).check_identity(path, trajectory.episode_id, trajectory.events)
    except CorruptRecordError as exc:
        raise ReplaySourceError(path, None, str(exc).removeprefix(f"{path}: ")) from None
    if path.parent.name == TRAJECTORIES and (run_dir / MANIFEST).is_file():
        context = _RunContext(run_dir)
        record = context.record(path, trajectory)
        return LoadResult(
            records=[record.model_copy(update={"source_format": SourceFormat.TRAJECTORY})],
            problems=([context.problem] if context.problem else []) + context.plugin_problems(),
        )
    return LoadResult(
        records=[
            Recorded(
                source_format=SourceFormat.TRAJECTORY,
                source_file=str(path),
                trajectory=trajectory,
                labels=_judge_labels(trajectory),
                meta={"problem": "not inside a run directory: no scenario to score against"},
            )
        ]
    )
