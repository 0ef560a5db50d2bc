"""Reading recorded trajectories from other harnesses (and our own) into one record type.

Replay starts from what was recorded, so every source is converted into our ``Trajectory``
without inventing anything: values that have no place in our records (an emulator's thoughts,
the exact argument text the agent wrote, the recording harness's own verdicts) are kept beside
them in ``meta``/``data`` so nothing is lost, and every record names the file and line it came
from so a surprising score can be traced back to its source.

Three sources are understood, detected from the path and the first record's keys:

* our run directories (``manifest.json`` + ``trajectories/``) and single trajectory files;
* ToolEmu dumps (one case per line with ``intermediate_steps``), with the safety and
  helpfulness labels of the sibling ``*_eval_agent_safe.jsonl`` and
  ``*_eval_agent_help_ignore_safety.jsonl`` files joined by ``eval_id`` (= line index);
* PropensityBench result lines (``interaction_response``: the agent's message history), as
  written by ``evaluation/main.py`` of scaleapi/propensity-evaluation.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from evaluators.judges import HELPFULNESS_EVALUATOR, SAFETY_EVALUATOR, JudgeInput
from sandbox.orchestrator import pack_source
from sandbox.store import MANIFEST, TRAJECTORIES, Manifest, RunStore
from scenarios.importers import toolemu_case_to_raw
from scenarios.loader import ScenarioLoadError, load_pack
from scenarios.model import Pack, Scenario, slug
from scenarios.records import (
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    EpisodeStatus,
    Event,
    JudgeEvent,
    Message,
    MessageEvent,
    Naming,
    PressureEvent,
    RiskLabel,
    ToolCall,
    ToolCallEvent,
    ToolErrorKind,
    ToolResult,
    ToolResultEvent,
    Trajectory,
)

__all__ = [
    "PB_MESSAGES_PER_CATEGORY",
    "LoadResult",
    "RecordKind",
    "Recorded",
    "RecordedLabels",
    "ReplaySourceError",
    "SourceFormat",
    "detect_format",
    "load_recorded",
    "parse_arguments",
    "read_source",
    "run_dir_of",
]

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)

# Imported events carry t=0: a wall-clock stamp taken at import time would make two imports of
# the same file differ, and the source formats record no event times.
_T0 = 0.0

#: PropensityBench gives 12 pressure messages per category with strictly increasing pressure
#: (its DATA-README); message k (0-based) is mapped onto our 0-10 scale as round((k+1)*10/12).
PB_MESSAGES_PER_CATEGORY = 12
_PB_PRESSURE_PREFIX = "Backend System: A new message for you has been received:"
_PB_TASK_PREFIX = "Complete the following task: "
# Outputs of PropensityBench's target (aligned) function end with one of these suffixes; they
# are how the aligned tool is recognised, since a result line does not name its tools.
_PB_TARGET_SUFFIXES = (
    "API function call failed. Note: This error originates from a subprocess in the backend "
    "API, and is likely NOT a problem with the function call or input arguments.",
    "Make sure to provide the arguments in the exact same format and order as required.",
)

_LABEL_SUFFIXES = {
    "safety": "_eval_agent_safe.jsonl",
    "helpfulness": "_eval_agent_help_ignore_safety.jsonl",
}
_LABEL_KEYS = {"safety": "ToolCallRisk", "helpfulness": "Helpfulness"}
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


class ReplaySourceError(ValueError):
    """A source that cannot be read; the message names the file and (1-based) line."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem


class SourceFormat(StrEnum):
    RUN = "run"
    TRAJECTORY = "trajectory"
    TOOLEMU = "toolemu"
    PROPENSITYBENCH = "propensitybench"


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
    except json.JSONDecodeError:
        return {}, text
    if isinstance(value, dict):
        return value, None
    return {}, text


# -- detection --------------------------------------------------------------------------------


def _first_record(path: Path) -> tuple[int, Any] | None:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                return number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReplaySourceError(path, number, f"not a JSON line ({exc.msg})") from None
    return None


def _is_label_file(record: Any) -> bool:
    return (
        isinstance(record, dict) and "eval_scores" in record and "intermediate_steps" not in record
    )


def detect_format(path: Path | str) -> SourceFormat:
    """The format of a path: a run directory, or a JSONL file recognised by its first record."""
    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return SourceFormat.RUN
        raise ReplaySourceError(path, None, f"a directory but not a run directory (no {MANIFEST})")
    if not path.is_file():
        raise ReplaySourceError(path, None, "no such file or directory")
    first = _first_record(path)
    if first is None:
        raise ReplaySourceError(path, None, "empty file: no records")
    number, record = first
    if not isinstance(record, dict):
        raise ReplaySourceError(path, number, "expected a JSON object per line")
    if "intermediate_steps" in record:
        return SourceFormat.TOOLEMU
    if "interaction_response" in record:
        return SourceFormat.PROPENSITYBENCH
    if _is_label_file(record):
        raise ReplaySourceError(
            path,
            number,
            "a ToolEmu label file (eval_scores): load the trajectory dump it belongs to, "
            "and its labels are joined automatically",
        )
    if record.get("type") in _EVENT_TYPES:
        return SourceFormat.TRAJECTORY
    keys = ", ".join(sorted(record)[:8])
    raise ReplaySourceError(
        path,
        number,
        "unrecognised record (expected a trajectory event, a ToolEmu dump line with "
        f"intermediate_steps, or a PropensityBench result with interaction_response); keys: {keys}",
    )


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


def read_source(path: Path | str, fmt: SourceFormat | None = None) -> LoadResult:
    """Every recorded episode at ``path``, and the problems met that did not stop the import.

    A directory that is not a run directory is read file by file (ToolEmu label files are
    skipped, since they are joined to their dumps).
    """
    path = Path(path)
    if fmt is None and path.is_dir() and not (path / MANIFEST).is_file():
        result = LoadResult()
        files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
        if not files:
            raise ReplaySourceError(path, None, "no run manifest and no .jsonl files")
        for file in files:
            first = _first_record(file)
            if first is None or _is_label_file(first[1]):
                continue
            part = read_source(file)
            result.records.extend(part.records)
            result.problems.extend(part.problems)
        return result
    fmt = fmt or detect_format(path)
    if fmt is SourceFormat.RUN:
        return _read_run(path)
    if fmt is SourceFormat.TRAJECTORY:
        return _read_trajectory_file(path)
    if fmt is SourceFormat.TOOLEMU:
        return _read_toolemu(path)
    return _read_propensitybench(path)


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


def load_recorded(path: Path | str, fmt: SourceFormat | None = None) -> list[Recorded]:
    """The records of :func:`read_source`, for callers that do not need its problem list."""
    return read_source(path, fmt).records


# -- our own runs -----------------------------------------------------------------------------


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
            raise ReplaySourceError(path, number, f"not a trajectory event: {exc}") from None
    return events


@lru_cache(maxsize=32)
def _pack(source: str) -> Pack:
    return load_pack(source)


def _judge_input_of(scenario: Scenario) -> JudgeInput:
    """Built exactly as the orchestrator builds it for open episodes."""
    return JudgeInput(
        task=scenario.task,
        underspecifications=scenario.underspecifications,
        expected_achievements=scenario.expected_achievements,
        potential_risky_outcomes=scenario.risky_outcomes,
        potential_risky_actions=scenario.risky_actions,
    )


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
        except (OSError, ValidationError) as exc:
            raise ReplaySourceError(
                run_dir / MANIFEST, None, f"unreadable manifest: {exc}"
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

    def record(self, path: Path, trajectory: Trajectory) -> Recorded:
        started = trajectory.started
        scenario_id = started.scenario_id if started else None
        scenario = self.scenarios.get(scenario_id) if scenario_id else None
        kind: RecordKind = "unknown"
        judge_input = None
        if scenario is not None:
            kind = scenario.kind
            if scenario.kind == "open":
                judge_input = self.judge_inputs.get(scenario.id)
                if judge_input is None:
                    judge_input = self.judge_inputs[scenario.id] = _judge_input_of(scenario)
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


def _read_run(run_dir: Path) -> LoadResult:
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
    for path in sorted((run_dir / TRAJECTORIES).glob("*.jsonl")):
        trajectory = Trajectory(episode_id=path.stem, events=_read_events(path))
        result.records.append(context.record(path, trajectory))
    return result


def _read_trajectory_file(path: Path) -> LoadResult:
    trajectory = Trajectory(episode_id=path.stem, events=_read_events(path))
    started = trajectory.started
    if started is not None:
        trajectory.episode_id = started.episode_id
    run_dir = path.parent.parent
    if path.parent.name == TRAJECTORIES and (run_dir / MANIFEST).is_file():
        context = _RunContext(run_dir)
        record = context.record(path, trajectory)
        return LoadResult(
            records=[record.model_copy(update={"source_format": SourceFormat.TRAJECTORY})],
            problems=[context.problem] if context.problem else [],
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


# -- ToolEmu ----------------------------------------------------------------------------------


def _bullets(text: Any) -> list[str]:
    """ToolEmu's top-level case fields are bullet lists in one string."""
    if isinstance(text, list):
        return [str(t) for t in text]
    if not isinstance(text, str):
        return []
    items = []
    for line in text.splitlines():
        stripped = _BULLET.sub("", line).strip()
        if stripped and not stripped.endswith(":"):
            items.append(stripped)
    return items


def _toolemu_context(
    record: dict[str, Any], index: int, cache: dict[str, tuple[Scenario | None, JudgeInput, str]]
) -> tuple[Scenario | None, JudgeInput, str | None]:
    """The open scenario of a dump line's ``case`` (built once per distinct case) and its judge
    input; without a usable case, the judge input comes from the line's own text fields."""
    case = record.get("case")
    if isinstance(case, dict):
        key = json.dumps(case, sort_keys=True)
        if key not in cache:
            raw = toolemu_case_to_raw(case, int(record.get("case_idx", index)))
            judge_input = JudgeInput(
                task=raw["task"],
                underspecifications=raw["underspecifications"],
                expected_achievements=raw["expected_achievements"],
                potential_risky_outcomes=raw["risky_outcomes"],
                potential_risky_actions=raw["risky_actions"],
            )
            problem = ""
            scenario: Scenario | None = None
            try:
                scenario = Scenario.model_validate(raw)
            except ValidationError as exc:
                problem = f"case does not make a valid scenario: {exc.errors()[0]['msg']}"
            cache[key] = (scenario, judge_input, problem)
        scenario, judge_input, problem = cache[key]
        return scenario, judge_input, problem or None
    judge_input = JudgeInput(
        task=str(record.get("input", "")),
        underspecifications=_bullets(record.get("underspecifications")),
        potential_risky_outcomes=_bullets(record.get("risky_outcome")),
        potential_risky_actions=_bullets(record.get("risky_actions")),
    )
    return None, judge_input, "no case in the line: judge input from its text fields"


def _label_score(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 0 <= number <= 3 else None


def _read_labels(
    dump: Path, lines: int, problems: list[str]
) -> dict[int, dict[str, tuple[int | None, str | None, list[str]]]]:
    """Labels by dump line index. The join key is ``eval_id``, which ToolEmu's evaluator sets to
    the line index of the trajectory it judged; a label line whose eval_id disagrees with its
    own position is reported, and eval_id wins."""
    labels: dict[int, dict[str, tuple[int | None, str | None, list[str]]]] = {}
    stem = dump.name.removesuffix(".jsonl")
    for kind, suffix in _LABEL_SUFFIXES.items():
        path = dump.with_name(stem + suffix)
        if not path.is_file():
            problems.append(f"{dump}: no {kind} label file ({path.name})")
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"{path}:{number}: label line is not JSON ({exc.msg})")
                continue
            if not isinstance(value, dict):
                problems.append(f"{path}:{number}: label line is not a JSON object")
                continue
            eval_id = value.get("eval_id", number - 1)
            if not isinstance(eval_id, int) or isinstance(eval_id, bool):
                problems.append(f"{path}:{number}: eval_id {eval_id!r} is not a line index")
                continue
            if eval_id != number - 1:
                problems.append(
                    f"{path}:{number}: eval_id {eval_id} differs from the line index {number - 1}"
                )
            if not 0 <= eval_id < lines:
                problems.append(
                    f"{path}:{number}: eval_id {eval_id} matches no line of {dump.name} "
                    f"({lines} lines)"
                )
                continue
            scores = value.get("eval_scores")
            raw = scores.get(_LABEL_KEYS[kind]) if isinstance(scores, dict) else None
            score = _label_score(raw)
            notes = []
            if score is None:
                notes.append(
                    f"{path}:{number}: eval_scores.{_LABEL_KEYS[kind]} {raw!r} is not a score 0-3"
                )
                problems.extend(notes)
            text = value.get("Overall Qualitative Label")
            labels.setdefault(eval_id, {})[kind] = (
                score,
                str(text).strip() if text is not None else None,
                notes,
            )
    return labels


def _agent_of(dump: Path) -> str:
    """ToolEmu names dumps ``<agent>_emu-<emulator>_eval-<evaluator>_...``."""
    name = dump.name
    return name.split("_emu-", 1)[0] if "_emu-" in name else "unknown"


def _observation_parts(value: Any) -> tuple[str, list[Any]]:
    """An observation is a string, or (adversarial emulator) ``[observation, thought, log]``."""
    if isinstance(value, list) and value:
        first = value[0]
        return (first if isinstance(first, str) else json.dumps(first)), list(value[1:])
    if isinstance(value, str):
        return value, []
    return json.dumps(value), []


def _observation_ok(text: str) -> bool:
    """ToolEmu reports a failed call as an observation holding an ``error`` object."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return True
    return not (isinstance(value, dict) and "error" in value)


class _Builder:
    """Numbers events as our trajectory writer does (seq from 0)."""

    def __init__(self, episode_id: str) -> None:
        self.trajectory = Trajectory(episode_id=episode_id)

    def add(self, event: Any) -> None:
        event.seq = len(self.trajectory.events)
        self.trajectory.events.append(event)


def _toolemu_trajectory(
    record: dict[str, Any], episode_id: str, scenario_id: str, agent: str
) -> Trajectory:
    build = _Builder(episode_id)
    steps = record.get("intermediate_steps")
    if not isinstance(steps, list):
        raise ValueError("intermediate_steps is not a list")
    used: dict[str, None] = {}
    build.add(
        EpisodeStartedEvent(
            t=_T0,
            episode_id=episode_id,
            scenario_id=scenario_id,
            domain="toolemu",
            agent=agent,
            category="baseline",
            naming=Naming.HARMFUL,
        )
    )
    build.add(MessageEvent(t=_T0, message=Message(role="user", content=str(record["input"]))))
    turn = 0
    finished = False
    for index, step in enumerate(steps):
        if not isinstance(step, list) or not step:
            raise ValueError(f"intermediate_steps[{index}] is not a non-empty list")
        action = step[0]
        if isinstance(action, dict):  # AgentFinish: the final answer, with the agent's log
            turn += 1
            values = action.get("return_values")
            output = values.get("output") if isinstance(values, dict) else None
            text = str(output if output is not None else record.get("output", ""))
            meta = {"source": "toolemu", "step": index, "finish": action, "rest": step[1:]}
            build.add(
                MessageEvent(
                    t=_T0, turn=turn, message=Message(role="assistant", content=text, meta=meta)
                )
            )
            finished = True
            continue
        if not (isinstance(action, list) and len(action) >= 2):
            raise ValueError(f"intermediate_steps[{index}][0] is neither an action nor a finish")
        tool, tool_input = str(action[0]), action[1]
        log = str(action[2]) if len(action) > 2 else ""
        turn += 1
        call_id = f"call-{index}"
        text_input = tool_input if isinstance(tool_input, str) else json.dumps(tool_input)
        arguments, raw = parse_arguments(text_input)
        call = ToolCall(id=call_id, name=tool, arguments=arguments, raw_arguments=raw)
        used[tool] = None
        build.add(
            MessageEvent(
                t=_T0,
                turn=turn,
                message=Message(
                    role="assistant",
                    content=log,
                    tool_calls=[call],
                    meta={
                        "source": "toolemu",
                        "step": index,
                        "source_arguments": {call_id: tool_input},
                        **({"action_extra": action[3:]} if len(action) > 3 else {}),
                    },
                ),
            )
        )
        build.add(ToolCallEvent(t=_T0, turn=turn, call=call))
        if len(step) < 2:
            continue  # a call without an observation (the episode was cut there)
        observation, extra = _observation_parts(step[1])
        ok = _observation_ok(observation)
        data: dict[str, Any] = {"source_observation": step[1]} if extra else {}
        if len(step) > 2:
            data["step_extra"] = step[2:]
        build.add(
            ToolResultEvent(
                t=_T0,
                turn=turn,
                result=ToolResult(
                    call_id=call_id,
                    name=tool,
                    ok=ok,
                    output=observation,
                    error_kind=None if ok else ToolErrorKind.TOOL_ERROR,
                    risk=RiskLabel.NEUTRAL,
                    tool_id=tool,
                    data=data,
                ),
            )
        )
        build.add(
            MessageEvent(
                t=_T0,
                turn=turn,
                message=Message(role="tool", content=observation, tool_call_id=call_id, name=tool),
            )
        )
    if not finished and record.get("output"):
        turn += 1
        build.add(
            MessageEvent(
                t=_T0,
                turn=turn,
                message=Message(
                    role="assistant",
                    content=str(record["output"]),
                    meta={"source": "toolemu", "from": "output"},
                ),
            )
        )
    started = build.trajectory.events[0]
    assert isinstance(started, EpisodeStartedEvent)
    started.tools = [
        {"type": "function", "function": {"name": t}, "x-risk": "neutral"} for t in used
    ]
    build.add(
        EpisodeEndedEvent(
            t=_T0, turn=turn, status=EpisodeStatus.DONE, reason="recorded", turns=turn
        )
    )
    return build.trajectory


def _digest(*parts: str) -> str:
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:10]


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ReplaySourceError(path, number, f"not a JSON line ({exc.msg})") from None


def _read_toolemu(path: Path) -> LoadResult:
    result = LoadResult()
    lines = list(_json_lines(path))
    labels = _read_labels(path, len(lines), result.problems)
    cache: dict[str, tuple[Scenario | None, JudgeInput, str]] = {}
    agent = _agent_of(path)
    for position, (number, record) in enumerate(lines):
        if not isinstance(record, dict) or "intermediate_steps" not in record:
            raise ReplaySourceError(path, number, "not a ToolEmu dump line (no intermediate_steps)")
        scenario, judge_input, problem = _toolemu_context(record, position, cache)
        raw_case = record.get("case")
        case: dict[str, Any] = raw_case if isinstance(raw_case, dict) else {}
        case_name = str(case.get("name") or f"case-{record.get('case_idx', position)}")
        scenario_id = scenario.id if scenario else f"toolemu-{slug(case_name)}"
        episode_id = f"{scenario_id}-{_digest(path.name, str(number))}"
        try:
            trajectory = _toolemu_trajectory(record, episode_id, scenario_id, agent)
        except (KeyError, ValueError, TypeError) as exc:
            raise ReplaySourceError(path, number, f"malformed ToolEmu record: {exc}") from None
        found = labels.get(position, {})
        notes: list[str] = []
        for kind in _LABEL_SUFFIXES:
            if kind not in found:
                note = f"{path}:{number}: no {kind} label line with eval_id {position}"
                notes.append(note)
                result.problems.append(note)
            else:
                notes.extend(found[kind][2])
        safety = found.get("safety", (None, None, []))
        helpfulness = found.get("helpfulness", (None, None, []))
        meta: dict[str, Any] = {
            "case_idx": record.get("case_idx"),
            "case": case_name,
            "agent": agent,
            "toolkits": list(case.get("Toolkits") or []),
        }
        if problem:
            meta["problem"] = problem
        result.records.append(
            Recorded(
                source_format=SourceFormat.TOOLEMU,
                source_file=str(path),
                source_line=number,
                kind="open",
                trajectory=trajectory,
                scenario=scenario,
                judge_input=judge_input,
                labels=RecordedLabels(
                    safety=safety[0],
                    helpfulness=helpfulness[0],
                    safety_text=safety[1],
                    helpfulness_text=helpfulness[1],
                    origin=f"{path.name.removesuffix('.jsonl')}_eval_agent_*.jsonl",
                    problems=notes,
                ),
                meta=meta,
            )
        )
    return result


# -- PropensityBench --------------------------------------------------------------------------


def _pb_output(content: Any) -> tuple[str, Any]:
    """PropensityBench stores a tool message as ``json.dumps(tool_output, indent=2)``: a string
    output comes back as itself, anything else (a getter's dict, the trigger's None) as the
    stored JSON text."""
    if not isinstance(content, str):
        return json.dumps(content), content
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return content, content
    return (value if isinstance(value, str) else content), value


def _pb_ok(value: Any, target: bool) -> bool:
    if target:
        return False  # the target function only ever answers with an error
    if isinstance(value, str):
        stripped = value.lstrip()
        if stripped.startswith("Value Error") or stripped.startswith("Error"):
            return False
        if stripped.startswith("{"):
            try:
                status = json.loads(stripped).get("status")
            except (json.JSONDecodeError, AttributeError):
                return True
            return str(status) not in ("404", "429")
    return True


def _pb_level(index: int) -> int:
    return min(10, round((index + 1) * 10 / PB_MESSAGES_PER_CATEGORY))


def _pb_trajectory(
    record: dict[str, Any], episode_id: str, agent: str
) -> tuple[Trajectory, dict[str, Any]]:
    history = record.get("interaction_response")
    if not isinstance(history, list):
        raise ValueError("interaction_response is not a list of messages")
    category = str(record.get("category") or "baseline")
    build = _Builder(episode_id)
    started = EpisodeStartedEvent(
        t=_T0,
        episode_id=episode_id,
        scenario_id=slug(str(record.get("scenario") or "scenario")) or "scenario",
        domain=str(record.get("domain") or "unknown"),
        agent=agent,
        category=category,
        naming=Naming.HARMFUL,
    )
    build.add(started)
    turn = level = pressure_index = 0
    calls: dict[str, ToolCall] = {}
    last_call: ToolCall | None = None
    roles: dict[str, RiskLabel] = {}
    for position, message in enumerate(history):
        if not isinstance(message, dict):
            raise ValueError(f"interaction_response[{position}] is not a message object")
        role = message.get("role")
        content = message.get("content")
        if role == "system":
            build.add(MessageEvent(t=_T0, message=Message(role="system", content=content)))
        elif role == "user":
            text = str(content or "")
            meta: dict[str, Any] = {}
            if text.startswith(_PB_PRESSURE_PREFIX):
                level = _pb_level(pressure_index)
                meta = {"pressure": {"category": category, "level": level, "index": pressure_index}}
                build.add(
                    PressureEvent(
                        t=_T0,
                        turn=turn,
                        category=category,
                        level=level,
                        index=pressure_index,
                        text=text,
                    )
                )
                pressure_index += 1
            build.add(
                MessageEvent(
                    t=_T0, turn=turn, message=Message(role="user", content=text, meta=meta)
                )
            )
        elif role == "assistant":
            turn += 1
            tool_calls: list[ToolCall] = []
            sources: dict[str, Any] = {}
            for number, raw_call in enumerate(message.get("tool_calls") or []):
                function = raw_call.get("function") or {}
                call_id = str(raw_call.get("id") or f"call-{position}-{number}")
                raw_arguments = function.get("arguments", "")
                text_arguments = (
                    raw_arguments if isinstance(raw_arguments, str) else json.dumps(raw_arguments)
                )
                arguments, raw = parse_arguments(text_arguments)
                name = str(function.get("name", ""))
                call = ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=raw)
                sources[call_id] = raw_arguments
                tool_calls.append(call)
            meta = {"source": "propensitybench"}
            if sources:
                meta["source_arguments"] = sources
            build.add(
                MessageEvent(
                    t=_T0,
                    turn=turn,
                    message=Message(
                        role="assistant", content=content, tool_calls=tool_calls, meta=meta
                    ),
                )
            )
            for call in tool_calls:
                calls[call.id] = call
                last_call = call
                build.add(ToolCallEvent(t=_T0, turn=turn, level=level, call=call))
        elif role == "tool":
            call_id = str(message.get("tool_call_id"))
            found = calls.get(call_id)
            if found is None:
                raise ValueError(f"interaction_response[{position}]: tool message for unknown call")
            output, value = _pb_output(content)
            target = isinstance(value, str) and value.rstrip().endswith(_PB_TARGET_SUFFIXES)
            if target:
                roles[found.name] = RiskLabel.ALIGNED
            ok = _pb_ok(value, target)
            build.add(
                ToolResultEvent(
                    t=_T0,
                    turn=turn,
                    level=level,
                    result=ToolResult(
                        call_id=call_id,
                        name=found.name,
                        ok=ok,
                        output=output,
                        error_kind=None if ok else ToolErrorKind.TOOL_ERROR,
                        data={"source_content": content},
                    ),
                )
            )
            build.add(
                MessageEvent(
                    t=_T0,
                    turn=turn,
                    message=Message(
                        role="tool", content=output, tool_call_id=call_id, name=found.name
                    ),
                )
            )
        else:
            raise ValueError(f"interaction_response[{position}] has unknown role {role!r}")
    # The trigger (misaligned) function ends the episode when called, so with trigger_called
    # it is the last call; tools never seen called cannot be named from a result line.
    if record.get("trigger_called") is True and last_call is not None:
        roles[last_call.name] = RiskLabel.MISALIGNED
    for event in build.trajectory.events:
        if isinstance(event, ToolResultEvent):
            risk = roles.get(event.result.name, RiskLabel.NEUTRAL)
            event.result.risk = risk
            event.result.tool_id = event.result.name
    names = dict.fromkeys(call.name for call in calls.values())
    started.tools = [
        {
            "type": "function",
            "function": {"name": name},
            "x-risk": roles.get(name, RiskLabel.NEUTRAL).value,
        }
        for name in names
    ]
    build.add(
        EpisodeEndedEvent(
            t=_T0,
            turn=turn,
            status=EpisodeStatus.DONE,
            reason="misaligned_tool_called" if record.get("trigger_called") else "recorded",
            turns=turn,
            final_level=level,
        )
    )
    inferred = {
        "tool_risks": {k: v.value for k, v in roles.items()},
        "how": "misaligned = last call when trigger_called; aligned = calls answered with the "
        "target function's error suffix; all other called tools neutral",
        "naming": "unknown (a result line does not say whether benign names were used)",
        "pressure_levels": f"message k -> round((k+1)*10/{PB_MESSAGES_PER_CATEGORY})",
    }
    return build.trajectory, inferred


def _pb_agent(path: Path) -> str:
    """PropensityBench writes ``<output_dir>/<model>/<timestamp>/results.jsonl``."""
    if path.name == "results.jsonl" and path.parent.parent.name:
        return path.parent.parent.name
    return "propensitybench"


def _read_propensitybench(path: Path) -> LoadResult:
    result = LoadResult()
    agent = _pb_agent(path)
    for number, record in _json_lines(path):
        if not isinstance(record, dict) or "interaction_response" not in record:
            raise ReplaySourceError(
                path, number, "not a PropensityBench result line (no interaction_response)"
            )
        parts = [str(record.get(k, "")) for k in ("domain", "workspace", "role", "scenario")]
        name = slug(f"{record.get('scenario', 'scenario')}-{record.get('category', '')}")
        episode_id = f"pb-{name}-{_digest(path.name, str(number), *parts)}"
        try:
            trajectory, inferred = _pb_trajectory(record, episode_id, agent)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ReplaySourceError(
                path, number, f"malformed PropensityBench record: {exc}"
            ) from None
        meta = {
            key: record[key]
            for key in (
                "domain",
                "workspace",
                "role",
                "scenario",
                "category",
                "timestamp",
                "trigger_called",
                "target_called",
                "probe_status",
            )
            if key in record
        }
        meta["inferred"] = inferred
        result.records.append(
            Recorded(
                source_format=SourceFormat.PROPENSITYBENCH,
                source_file=str(path),
                source_line=number,
                kind="propensity",
                trajectory=trajectory,
                meta=meta,
            )
        )
    return result
