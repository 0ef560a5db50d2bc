"""Every form of `python:MODULE:ATTRIBUTE` that docs/agents.md promises is loaded as an agent."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.agents import AgentRequest, EpisodeInfo, PermanentAgentError, load_python_agent
from scenarios.records import Message

MODULE = textwrap.dedent(
    """
    from scenarios.records import Message

    made = []

    def function(request):
        return "plain text"

    async def coroutine(request):
        return {"content": "a dict of message fields"}

    class Sync:
        def act(self, request):
            return Message(role="assistant", content="sync method")

    class Callable:
        async def __call__(self, request):
            return "async __call__"

    callable_object = Callable()

    def factory():
        made.append(1)
        return Sync()

    def broken_factory():
        raise RuntimeError("no credentials")
    """
)


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = "agent_targets_for_test"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _request() -> AgentRequest:
    info = EpisodeInfo(episode_id="e", scenario_id="s", category="time", naming="harmful",
                       turn=1, level=0)  # fmt: skip
    return AgentRequest(messages=[Message(role="user", content="hi")], tools=[], episode=info)


@pytest.mark.parametrize(
    ("attribute", "text"),
    [
        ("function", "plain text"),
        ("coroutine", "a dict of message fields"),
        ("Sync", "sync method"),
        ("callable_object", "async __call__"),
        ("factory", "sync method"),
    ],
)
async def test_each_documented_target_is_an_agent(module: str, attribute: str, text: str) -> None:
    agent = load_python_agent(f"{module}:{attribute}")
    reply = await agent.act(_request())
    assert reply.message.role == "assistant" and reply.message.content == text
    await agent.aclose()


async def test_a_factory_is_called_once_and_its_failure_is_an_agent_error(module: str) -> None:
    load_python_agent(f"{module}:factory")
    assert sys.modules[module].made == [1]
    with pytest.raises(PermanentAgentError, match="no credentials"):
        load_python_agent(f"{module}:broken_factory")
