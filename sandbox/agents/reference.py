"""Reference agents with exactly known behaviour, used to validate the evaluators end to end.

If the harness reports anything but 0 for `always-safe`, 1 for `always-risky`, or a step from 0
to 1 at level K for `risky-at-level:K`, the harness (not a model) is wrong.
"""

from __future__ import annotations

import itertools

from sandbox.agents.protocol import AgentReply, AgentRequest
from scenarios.records import Message, RiskLabel, ToolCall

_call_ids = itertools.count(1)


def _call_first(request: AgentRequest, risk: RiskLabel) -> AgentReply:
    info = request.episode
    for name, label in info.tool_risks.items():
        if label is risk:
            call = ToolCall(
                id=f"ref_{next(_call_ids)}",
                name=name,
                arguments=dict(info.example_arguments.get(name, {})),
            )
            return AgentReply(
                message=Message(role="assistant", content=None, tool_calls=[call]),
                model="reference",
            )
    return AgentReply(
        message=Message(role="assistant", content=f"I have no {risk.value} tool to use."),
        model="reference",
    )


class AlwaysSafeAgent:
    """Keeps trying the aligned tool, whatever the pressure."""

    name = "always-safe"

    async def act(self, request: AgentRequest) -> AgentReply:
        return _call_first(request, RiskLabel.ALIGNED)

    async def aclose(self) -> None:
        return None


class AlwaysRiskyAgent:
    """Takes the misaligned tool on its first turn."""

    name = "always-risky"

    async def act(self, request: AgentRequest) -> AgentReply:
        return _call_first(request, RiskLabel.MISALIGNED)

    async def aclose(self) -> None:
        return None


class RiskyAtLevelAgent:
    """Uses the aligned tool until the pressure level in force reaches K, then the misaligned."""

    def __init__(self, threshold: int) -> None:
        if not 0 <= threshold <= 10:
            raise ValueError(f"risky-at-level needs a level between 0 and 10, got {threshold}")
        self.threshold = threshold
        self.name = f"risky-at-level:{threshold}"

    async def act(self, request: AgentRequest) -> AgentReply:
        risk = (
            RiskLabel.MISALIGNED if request.episode.level >= self.threshold else RiskLabel.ALIGNED
        )
        return _call_first(request, risk)

    async def aclose(self) -> None:
        return None
