"""Reading ToolEmu trajectory dumps, with their evaluators' labels, into :class:`Recorded`.

The format is ToolEmu's (ryoungj/ToolEmu): a dump holds one case per line, the agent's
``intermediate_steps`` (actions with their emulated observations, then the final answer) and
the ``case`` it ran, which is rebuilt as an open scenario (:func:`toolemu_case_to_raw`). The
safety and helpfulness labels of the sibling ``*_eval_agent_safe.jsonl`` and
``*_eval_agent_help_ignore_safety.jsonl`` files, written by ToolEmu's evaluators, are joined by
``eval_id`` (= line index); those label files are not sources of their own, and are refused
when given alone and skipped when a directory is read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evaluators.judges import JudgeInput
from sandbox.replay.sources.common import (
    T0,
    Builder,
    LoadResult,
    Recorded,
    RecordedLabels,
    ReplaySourceError,
    SourceFormat,
    digest,
    first_object,
    json_lines,
    parse_arguments,
    strip_pydantic_urls,
)
from scenarios.importers import toolemu_case_to_raw
from scenarios.model import Scenario, slug
from scenarios.records import (
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    EpisodeStatus,
    Message,
    MessageEvent,
    Naming,
    RiskLabel,
    ToolCall,
    ToolCallEvent,
    ToolErrorKind,
    ToolResult,
    ToolResultEvent,
    Trajectory,
)

__all__ = ["LABEL_FILE_PROBLEM", "detect_toolemu", "is_label_file", "read_toolemu"]

_LABEL_SUFFIXES = {
    "safety": "_eval_agent_safe.jsonl",
    "helpfulness": "_eval_agent_help_ignore_safety.jsonl",
}
_LABEL_KEYS = {"safety": "ToolCallRisk", "helpfulness": "Helpfulness"}
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")

LABEL_FILE_PROBLEM = (
    "a ToolEmu label file (eval_scores): load the trajectory dump it belongs to, "
    "and its labels are joined automatically"
)


def detect_toolemu(path: Path) -> bool:
    """A file whose first record is a dump line (it has ``intermediate_steps``)."""
    first = first_object(path)
    return first is not None and "intermediate_steps" in first[1]


def is_label_file(record: Any) -> bool:
    """A line of a ToolEmu evaluator's label file: scores (or at least the ``eval_id`` every
    label line carries), and no trajectory."""
    return (
        isinstance(record, dict)
        and ("eval_scores" in record or "eval_id" in record)
        and "intermediate_steps" not in record
    )


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
    first_line: dict[tuple[str, int], int] = {}  # (scale, eval_id) -> the line that labelled it
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
            except RecursionError:
                problems.append(f"{path}:{number}: label line is JSON nested too deeply")
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
            earlier = first_line.setdefault((kind, eval_id), number)
            if earlier != number:
                # Two label lines for one trajectory: neither is trusted (which one the judge
                # meant cannot be told), so the episode has no label of this kind.
                note = (
                    f"{path}:{number}: eval_id {eval_id} already labelled on line {earlier}: "
                    f"no {kind} label is kept for it"
                )
                problems.append(note)
                _, text, earlier_notes = labels[eval_id][kind]
                labels[eval_id][kind] = (None, text, [*earlier_notes, note])
                continue
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
    except (json.JSONDecodeError, ValueError, RecursionError):
        return True
    return not (isinstance(value, dict) and "error" in value)


def _toolemu_trajectory(
    record: dict[str, Any], episode_id: str, scenario_id: str, agent: str
) -> Trajectory:
    build = Builder(episode_id)
    steps = record.get("intermediate_steps")
    if not isinstance(steps, list):
        raise ValueError("intermediate_steps is not a list")
    used: dict[str, None] = {}
    build.add(
        EpisodeStartedEvent(
            t=T0,
            episode_id=episode_id,
            scenario_id=scenario_id,
            domain="toolemu",
            agent=agent,
            category="baseline",
            naming=Naming.HARMFUL,
        )
    )
    build.add(MessageEvent(t=T0, message=Message(role="user", content=str(record["input"]))))
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
                    t=T0, turn=turn, message=Message(role="assistant", content=text, meta=meta)
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
                t=T0,
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
        build.add(ToolCallEvent(t=T0, turn=turn, call=call))
        if len(step) < 2:
            continue  # a call without an observation (the episode was cut there)
        observation, extra = _observation_parts(step[1])
        ok = _observation_ok(observation)
        data: dict[str, Any] = {"source_observation": step[1]} if extra else {}
        if len(step) > 2:
            data["step_extra"] = step[2:]
        build.add(
            ToolResultEvent(
                t=T0,
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
                t=T0,
                turn=turn,
                message=Message(role="tool", content=observation, tool_call_id=call_id, name=tool),
            )
        )
    if not finished and record.get("output"):
        turn += 1
        build.add(
            MessageEvent(
                t=T0,
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
        EpisodeEndedEvent(t=T0, turn=turn, status=EpisodeStatus.DONE, reason="recorded", turns=turn)
    )
    return build.trajectory


def read_toolemu(path: Path) -> LoadResult:
    result = LoadResult()
    lines = list(json_lines(path))
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
        episode_id = f"{scenario_id}-{digest(path.name, str(number))}"
        try:
            trajectory = _toolemu_trajectory(record, episode_id, scenario_id, agent)
        except (KeyError, ValueError, TypeError) as exc:
            raise ReplaySourceError(
                path, number, f"malformed ToolEmu record: {strip_pydantic_urls(str(exc))}"
            ) from None
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
