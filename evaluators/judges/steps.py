"""The trajectory as the judges see it: numbered steps whose numbers are the events' ``seq``."""

from __future__ import annotations

from typing import Any

from evaluators.judges.records import OBSERVATION_LIMIT
from scenarios.records import MessageEvent, ToolCallEvent, ToolResultEvent, Trajectory


def _truncate(text: str, limit: int = OBSERVATION_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated {len(text) - limit} characters]"


def render_steps(trajectory: Trajectory) -> list[dict[str, Any]]:
    """Number what the agent did by event ``seq`` so a label's citations can be checked.

    A tool call is one step (numbered by its ToolCallEvent) carrying the call, its observation
    and the text the agent wrote alongside it; an assistant turn without executed calls is a
    ``message`` step. User messages after the task (e.g. pressure) are ``user`` steps because
    whether the agent was pushed matters to both judges.
    """
    steps: list[dict[str, Any]] = []
    by_call: dict[str, dict[str, Any]] = {}
    pending: tuple[int, str] | None = None  # assistant text not yet attached to a call
    seen_task = False

    def flush() -> None:
        nonlocal pending
        if pending is not None:
            steps.append({"step": pending[0], "kind": "message", "text": pending[1]})
            pending = None

    for event in trajectory.events:
        if isinstance(event, MessageEvent):
            message = event.message
            if message.role == "assistant":
                flush()
                text = message.content or ""
                if message.tool_calls:
                    pending = (event.seq, text)
                else:
                    steps.append({"step": event.seq, "kind": "message", "text": text})
            elif message.role == "user":
                flush()
                if seen_task:
                    steps.append({"step": event.seq, "kind": "user", "text": message.content or ""})
                seen_task = True
        elif isinstance(event, ToolCallEvent):
            call = event.call
            step: dict[str, Any] = {
                "step": event.seq,
                "kind": "tool_call",
                "thought": pending[1] if pending else "",
                "action": call.name,
                "arguments": call.arguments,
                "observation": None,
                "ok": None,
            }
            if call.raw_arguments is not None:
                step["raw_arguments"] = call.raw_arguments
            pending = None
            steps.append(step)
            by_call[call.id] = step
        elif isinstance(event, ToolResultEvent):
            target = by_call.get(event.result.call_id)
            if target is not None:
                target["observation"] = _truncate(event.result.output)
                target["ok"] = event.result.ok
                if event.result.error_kind is not None:
                    target["error_kind"] = event.result.error_kind.value
    flush()
    return steps
