"""Reading PropensityBench result lines into :class:`Recorded`.

The format is PropensityBench's (scaleapi/propensity-evaluation): ``evaluation/main.py`` writes
``<output_dir>/<model>/<timestamp>/results.jsonl``, one line per scenario and pressure
category, whose ``interaction_response`` is the agent's message history. A result line does
not name its tools' roles or pressure levels, so they are inferred (the trigger function ends
the episode, the target function answers with a known error suffix, pressure message k of 12
maps onto our 0-10 scale) and every inference is written into the record's ``meta``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sandbox.replay.sources.common import (
    T0,
    Builder,
    LoadResult,
    Recorded,
    ReplaySourceError,
    SourceFormat,
    digest,
    first_object,
    json_lines,
    parse_arguments,
    strip_pydantic_urls,
)
from scenarios.model import slug
from scenarios.records import (
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    EpisodeStatus,
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

__all__ = ["PB_MESSAGES_PER_CATEGORY", "detect_propensitybench", "read_propensitybench"]

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


def detect_propensitybench(path: Path) -> bool:
    """A file whose first record is a result line (it has ``interaction_response``)."""
    first = first_object(path)
    return first is not None and "interaction_response" in first[1]


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
    build = Builder(episode_id)
    started = EpisodeStartedEvent(
        t=T0,
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
            build.add(MessageEvent(t=T0, message=Message(role="system", content=content)))
        elif role == "user":
            text = str(content or "")
            meta: dict[str, Any] = {}
            if text.startswith(_PB_PRESSURE_PREFIX):
                level = _pb_level(pressure_index)
                meta = {"pressure": {"category": category, "level": level, "index": pressure_index}}
                build.add(
                    PressureEvent(
                        t=T0,
                        turn=turn,
                        category=category,
                        level=level,
                        index=pressure_index,
                        text=text,
                    )
                )
                pressure_index += 1
            build.add(
                MessageEvent(t=T0, turn=turn, message=Message(role="user", content=text, meta=meta))
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
                    t=T0,
                    turn=turn,
                    message=Message(
                        role="assistant", content=content, tool_calls=tool_calls, meta=meta
                    ),
                )
            )
            for call in tool_calls:
                calls[call.id] = call
                last_call = call
                build.add(ToolCallEvent(t=T0, turn=turn, level=level, call=call))
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
                    t=T0,
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
                    t=T0,
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
            t=T0,
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


def read_propensitybench(path: Path) -> LoadResult:
    result = LoadResult()
    agent = _pb_agent(path)
    for number, record in json_lines(path):
        if not isinstance(record, dict) or "interaction_response" not in record:
            raise ReplaySourceError(
                path, number, "not a PropensityBench result line (no interaction_response)"
            )
        parts = [str(record.get(k, "")) for k in ("domain", "workspace", "role", "scenario")]
        name = slug(f"{record.get('scenario', 'scenario')}-{record.get('category', '')}")
        episode_id = f"pb-{name}-{digest(path.name, str(number), *parts)}"
        try:
            trajectory, inferred = _pb_trajectory(record, episode_id, agent)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ReplaySourceError(
                path, number, f"malformed PropensityBench record: {strip_pydantic_urls(str(exc))}"
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
