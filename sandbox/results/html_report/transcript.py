"""One episode as the viewer shows it: a transcript of blocks, built from the trajectory.

The raw event stream repeats itself for the model's sake (a tool result is recorded as a
``tool_result`` event *and* as the ``tool`` message the agent saw; a pressure message as a
``pressure`` event *and* the user message carrying it). A reader wants each thing once, so
related events are merged into one block that keeps every ``seq`` it stands for: scores cite
steps by event seq (a tool call by its ``tool_call`` event, a message by its ``message`` event),
and the viewer highlights a block when any of its seqs is cited.

Everything here is plain JSON-ready data; escaping is the page's job (it only ever inserts it
as text). Long strings are clipped so a run of a thousand episodes stays a file a browser opens.
"""

from __future__ import annotations

import json
from typing import Any

from evaluators.code_execution import EVALUATOR as CODE_EXECUTION
from evaluators.judges import HELPFULNESS_EVALUATOR, SAFETY_EVALUATOR
from evaluators.risky_choice import EVALUATOR as RISKY_TOOL_CHOICE
from evaluators.risky_choice import first_live_turn
from evaluators.world_metrics import EVALUATOR as WORLD_STATE
from scenarios.records import (
    AgentTurnEvent,
    EpisodeEndedEvent,
    EpisodeStartedEvent,
    ErrorEvent,
    JudgeEvent,
    MessageEvent,
    PressureEvent,
    Score,
    ToolCallEvent,
    ToolResultEvent,
    Trajectory,
    WorldEvent,
)

TEXT_LIMIT = 20_000
DETAIL_LIMIT = 4_000
# Bulky fields that repeat what the transcript already shows (judge and emulator prompts).
_DROPPED = frozenset({"prompt", "attempts"})
# Blocks a branched episode may have replayed from its recording (marked ``replayed``).
_REPLAYABLE = frozenset({"user", "pressure", "assistant", "call", "tool", "world"})


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n… [clipped {len(text) - limit} more characters]"


def _compact(value: Any, limit: int = DETAIL_LIMIT) -> Any:
    """A JSON value with long strings clipped and prompt transcripts replaced by a count."""
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in _DROPPED and isinstance(item, list):
                out[f"{key} (count)"] = len(item)
            else:
                out[str(key)] = _compact(item, limit)
        return out
    if isinstance(value, list | tuple):
        return [_compact(item, limit) for item in value]
    return value


def _pretty(value: Any) -> str:
    return clip(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _emulator(record: dict[str, Any]) -> dict[str, Any]:
    attempts = record.get("attempts") or []
    return {
        "model": record.get("model"),
        "mode": record.get("mode"),
        "answers": len(attempts),
        "cached": all(bool(a.get("cached")) for a in attempts) if attempts else None,
        "rejected": bool(record.get("rejected")),
        "problems": [str(a["problem"]) for a in attempts if a.get("problem")],
    }


def _result(event: ToolResultEvent) -> dict[str, Any]:
    result = event.result
    data = dict(result.data)
    execution = data.pop("execution", None)
    emulator = data.pop("emulator", None)
    view: dict[str, Any] = {
        "seq": event.seq,
        "ok": result.ok,
        "error_kind": result.error_kind.value if result.error_kind else None,
        "risk": result.risk.value if result.risk else None,
        "tool_id": result.tool_id,
        "output": clip(result.output),
    }
    if isinstance(execution, dict):
        view["execution"] = _compact(execution)
    if isinstance(emulator, dict):
        view["emulator"] = _emulator(emulator)
    if data:
        view["data"] = _pretty(_compact(data))
    return view


def cited_steps(score: Score) -> list[int]:
    """The event seqs a score points at, by each evaluator's own convention."""
    details = score.details
    steps: list[Any] = []
    if score.evaluator == RISKY_TOOL_CHOICE:
        steps = [details.get("step")]
    elif score.evaluator == WORLD_STATE:
        steps = [s.get("step") for s in details.get("steps", []) if s.get("toward_harm")]
        steps += list(details.get("stated_intent_steps") or [])
    elif score.evaluator == CODE_EXECUTION:
        steps = list(details.get("steps") or [])
    elif score.evaluator in (SAFETY_EVALUATOR, HELPFULNESS_EVALUATOR):
        steps = list(details.get("cited_steps") or [])
    elif isinstance(details.get("cited_steps"), list):
        steps = list(details["cited_steps"])
    return sorted({int(s) for s in steps if isinstance(s, int | float) and not isinstance(s, bool)})


def _score_note(score: Score) -> str:
    """The one line a reader wants first: why this label."""
    d = score.details
    if score.evaluator == RISKY_TOOL_CHOICE:
        if d.get("misaligned_called"):
            return f"called {d.get('misaligned_tool')} at level {d.get('level')}"
        return f"no misaligned call (pressure up to level {d.get('max_level')})"
    if score.evaluator == WORLD_STATE:
        return " → ".join(str(s) for s in d.get("path", []))
    if score.evaluator == CODE_EXECUTION:
        return str(d.get("reason") or "")
    return clip(str(d.get("reasoning") or ""), DETAIL_LIMIT)


def _score(score: Score) -> dict[str, Any]:
    return {
        "evaluator": score.evaluator,
        "value": score.value,
        "label": score.label,
        "cited": cited_steps(score),
        "note": _score_note(score),
        "details": _pretty(_compact(score.details)),
    }


def _header(started: EpisodeStartedEvent) -> dict[str, Any]:
    tools = []
    for tool in started.tools:
        function = tool.get("function", {})
        tools.append(
            {
                "name": str(function.get("name", "")),
                "risk": str(tool.get("x-risk", "neutral")),
                "description": clip(str(function.get("description", "")), DETAIL_LIMIT),
            }
        )
    return {
        "scenario": started.scenario_id,
        "domain": started.domain,
        "agent": started.agent,
        "category": started.category,
        "naming": started.naming.value,
        "repeat": started.repeat,
        "seed": started.seed,
        "tools": tools,
        "branched_from": _pretty(started.branched_from) if started.branched_from else None,
    }


class _Builder:
    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.calls: dict[str, dict[str, Any]] = {}
        self.turn_info: dict[str, Any] | None = None
        self.seen_task = False
        self.header: dict[str, Any] | None = None
        # A branched episode's first live turn; blocks of earlier turns were replayed.
        self.live_from = 0
        self.turn = 0

    def add(self, kind: str, seq: int, **fields: Any) -> dict[str, Any]:
        block = {"kind": kind, "seqs": [seq], "seq": seq, **fields}
        if self.turn < self.live_from and kind in _REPLAYABLE:
            block["replayed"] = True  # the recording's, not the live agent's
        self.blocks.append(block)
        return block

    def message(self, event: MessageEvent) -> None:
        message = event.message
        text = clip(message.content or "")
        if message.role == "system":
            self.add("system", event.seq, text=text)
        elif message.role == "user":
            pressure = message.meta.get("pressure")
            last = self.blocks[-1] if self.blocks else None
            if isinstance(pressure, dict):
                if last is not None and last["kind"] == "pressure" and last["text"] == text:
                    last["seqs"].append(event.seq)
                else:
                    self.add(
                        "pressure",
                        event.seq,
                        category=str(pressure.get("category", "")),
                        level=pressure.get("level"),
                        text=text,
                    )
            else:
                self.add("user" if self.seen_task else "task", event.seq, text=text)
                self.seen_task = True
        elif message.role == "assistant":
            planned = [call.name for call in message.tool_calls]
            self.add(
                "assistant",
                event.seq,
                turn=event.turn,
                text=text,
                planned=planned,
                agent_turn=self.turn_info,
            )
            self.turn_info = None
        else:
            call = self.calls.get(message.tool_call_id or "")
            if call is not None and call.get("result") is not None:
                call["seqs"].append(event.seq)
            else:
                self.add("tool", event.seq, name=message.name, text=text)

    def event(self, event: Any) -> None:
        self.turn = event.turn
        if isinstance(event, EpisodeStartedEvent):
            self.header = _header(event)
            self.live_from = first_live_turn(event)
        elif isinstance(event, MessageEvent):
            self.message(event)
        elif isinstance(event, AgentTurnEvent):
            self.turn_info = {
                "model": event.model,
                "latency_s": round(event.latency_s, 3),
                "attempts": event.attempts,
                "protocol": event.protocol,
                "tokens": event.usage.total_tokens if event.usage else None,
                "recovered": dict(event.recovered_calls),
                "unparsed": [
                    {
                        "format": u.format,
                        "names": list(u.names),
                        "reason": u.reason,
                        "excerpt": clip(u.excerpt),
                    }
                    for u in event.unparsed_calls
                ],
            }
        elif isinstance(event, ToolCallEvent):
            call = event.call
            self.calls[call.id] = self.add(
                "call",
                event.seq,
                turn=event.turn,
                level=event.level,
                name=call.name,
                arguments=_pretty(_compact(call.arguments)),
                raw_arguments=clip(call.raw_arguments) if call.raw_arguments else None,
                recovered_from=call.recovered_from,
                result=None,
                world=None,
            )
        elif isinstance(event, ToolResultEvent):
            target = self.calls.get(event.result.call_id)
            if target is None:
                target = self.add("call", event.seq, name=event.result.name, arguments="")
                target["world"] = None
            else:
                target["seqs"].append(event.seq)
            target["result"] = _result(event)
        elif isinstance(event, WorldEvent):
            world = {
                "seq": event.seq,
                "before": event.state_before,
                "after": event.state_after,
                "attempted": event.attempted,
                "taken": event.taken,
                "toward_harm": event.toward_harm,
                "gated": event.gated,
            }
            target = self.calls.get(event.call_id)
            if target is None:
                self.add("world", event.seq, world=world)
            else:
                target["seqs"].append(event.seq)
                target["world"] = world
        elif isinstance(event, PressureEvent):
            self.add(
                "pressure",
                event.seq,
                category=event.category,
                level=event.level,
                text=clip(event.text),
            )
        elif isinstance(event, ErrorEvent):
            self.add(
                "error",
                event.seq,
                error_kind=event.kind,
                message=clip(event.message),
                retryable=event.retryable,
                attempt=event.attempt,
                will_retry=event.will_retry,
            )
        elif isinstance(event, JudgeEvent):
            verdict = event.verdict
            self.add(
                "judge",
                event.seq,
                judge=event.judge,
                score=event.score,
                label=event.label,
                reasoning=clip(str(verdict.get("reasoning") or "")),
                cited=list(verdict.get("cited_steps") or []),
                method=verdict.get("method"),
                model=verdict.get("model"),
                notes=[str(n) for n in verdict.get("notes") or []],
            )
        elif isinstance(event, EpisodeEndedEvent):
            self.add(
                "end",
                event.seq,
                status=event.status.value,
                reason=event.reason,
                turns=event.turns,
                final_level=event.final_level,
            )


def episode_view(
    trajectory: Trajectory | None, scores: list[Score], problem: str | None = None
) -> dict[str, Any]:
    """The viewer's data for one episode: header, transcript blocks, scores and world path;
    ``problem`` (why its trajectory could not be read) is shown as an error block."""
    builder = _Builder()
    if trajectory is not None:
        for event in trajectory.events:
            builder.event(event)
    if problem is not None:
        builder.add(
            "error",
            0,
            error_kind="unreadable_trajectory",
            message=clip(problem),
            retryable=False,
            attempt=0,
            will_retry=False,
        )
    world = next((s for s in scores if s.evaluator == WORLD_STATE), None)
    path = None
    if world is not None:
        path = {
            "states": [str(s) for s in world.details.get("path", [])],
            "harmful": [str(s) for s in world.details.get("harmful_states_reached", [])],
            "final": world.details.get("final_state"),
            "first_intent_step": world.details.get("first_intent_step"),
        }
    return {
        "header": builder.header,
        "blocks": builder.blocks,
        "scores": [_score(s) for s in sorted(scores, key=lambda s: s.evaluator)],
        "path": path,
    }
