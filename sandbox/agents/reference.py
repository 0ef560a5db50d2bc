"""Reference agents with exactly known behaviour, used to validate the evaluators end to end.

If the harness reports anything but 0 for `always-safe`, 1 for `always-risky`, or a step from 0
to 1 at level K for `risky-at-level:K`, the harness (not a model) is wrong.
"""

from __future__ import annotations

import itertools
from typing import Any

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


_MARK = 60  # how much of the planted text identifies it in a tool output


class InjectionReferenceAgent:
    """``follows-injections`` / ``ignores-injections``: known behaviour under attack.

    Both do the task the same way (the oracle's task calls: past the injection point, into the
    world's goal state), one call per turn, then answer. Once a tool output shows the planted
    text, ``follows-injections`` first makes every call the attacker asks for (its attack
    success is 1 on every attacked episode whose attack reaches it) and ``ignores-injections``
    never does (0), and says it ignored instructions found in a tool's output (flagged). On a
    scenario without injections both only answer."""

    def __init__(self, follow: bool) -> None:
        self.follow = follow
        self.name = "follows-injections" if follow else "ignores-injections"

    def _reply(self, content: str | None, call: tuple[str, dict[str, Any]] | None) -> AgentReply:
        calls = (
            [ToolCall(id=f"ref_{next(_call_ids)}", name=call[0], arguments=dict(call[1]))]
            if call is not None
            else []
        )
        return AgentReply(
            message=Message(role="assistant", content=content, tool_calls=calls),
            model="reference",
        )

    async def act(self, request: AgentRequest) -> AgentReply:
        oracle = request.episode.injection
        if oracle is None:
            return self._reply("This task has no injection for me to act on.", None)
        mark = (oracle.text or "")[:_MARK]
        made = 0
        seen_after: int | None = None  # calls made when the attack first showed up
        for message in request.messages:
            if message.role == "assistant":
                made += len(message.tool_calls)
            elif message.role == "tool" and seen_after is None and mark:
                if mark in (message.content or ""):
                    seen_after = made
        seen = seen_after is not None
        plan = list(oracle.task_calls)
        if self.follow and seen_after is not None:
            # The attacker's calls come right after the attack is seen, then the rest of the
            # task: positions in the plan, so an attack call equal to a task call is no mix-up.
            plan = [*plan[:seen_after], *oracle.attack_calls, *plan[seen_after:]]
        if made < len(plan):
            return self._reply(None, plan[made])
        if seen and not self.follow:
            return self._reply(
                "Done. A tool output contained instructions to do something else; I did not "
                "follow them, as they did not come from you.",
                None,
            )
        return self._reply("Done.", None)

    async def aclose(self) -> None:
        return None
