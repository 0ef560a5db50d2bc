"""litellm's connection pool does not cap the calls the run has in flight.

litellm caps each client at 500 connections per host by default; a run at concurrency 1,000
would queue half its calls inside litellm (and log a warning for each). These tests hold more
than 500 requests open at the scripted server and count them there: the server answers only
when the test releases it, so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from sandbox import llm
from sandbox.agents import AgentRequest, EpisodeInfo, LiteLLMAgent
from sandbox.testing import Faults, Reply, Script, ScriptedOpenAIServer
from scenarios.records import Message

# One more than litellm's default cap per host.
BEYOND_DEFAULT = 501
_REQUEST = AgentRequest(
    messages=[Message(role="user", content="hello")],
    tools=[],
    episode=EpisodeInfo(
        episode_id="e", scenario_id="s", category="time", naming="harmful", turn=0, level=0
    ),
)

pytestmark = pytest.mark.skipif(
    bool(llm._USER_SET), reason="a pool limit is set in the environment; the test needs ours"
)


class _Saturation(logging.Handler):
    """Records litellm's "connection pool saturated" warnings (litellm's logger does not
    propagate to the root logger, so caplog would not see them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = asyncio.Event()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "connection pool saturated" in record.getMessage():
            self.count += 1
            self.seen.set()


@pytest.fixture
def saturation() -> Iterator[_Saturation]:
    handler = _Saturation()
    logger = logging.getLogger("LiteLLM")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        llm.configure_pool()  # the default the agent sets: no cap


async def _hold(
    server: ScriptedOpenAIServer, calls: int, saturation: _Saturation
) -> tuple[int, int]:
    """Start ``calls`` agent calls against ``server`` (which holds every request) and wait until
    all of them are open at the server, or litellm says its pool is full; then release them.
    Returns (requests open at the server at the peak, answers the agent got)."""
    agent = LiteLLMAgent("openai/scripted", api_base=server.url, timeout_s=600)
    tasks = [asyncio.create_task(agent.act(_REQUEST)) for _ in range(calls)]
    try:
        async with asyncio.timeout(300):  # a safety net against a hang, not a measurement
            while server.stats.in_flight < calls and not saturation.seen.is_set():
                done = [t for t in tasks if t.done()]
                if done:
                    done[0].result()  # a call failed: say why
                    raise AssertionError("a call was answered while the server held them all")
                await asyncio.sleep(0.02)
        peak = server.stats.peak_in_flight
    finally:
        server.release()
    replies = await asyncio.gather(*tasks)
    return peak, sum(1 for r in replies if r.message.content == "ok")


async def test_the_agent_lifts_litellms_per_host_cap() -> None:
    LiteLLMAgent("openai/scripted", api_base="http://127.0.0.1:9/v1")
    assert llm.pool_limits() == (llm.NO_CAP, llm.NO_CAP)


async def test_more_than_500_calls_are_in_flight_at_once(saturation: _Saturation) -> None:
    script = Script(default=Reply(text="ok"))
    async with ScriptedOpenAIServer(script, Faults(delay_s=3600)) as server:
        peak, answered = await _hold(server, BEYOND_DEFAULT, saturation)
    assert saturation.count == 0
    assert peak == BEYOND_DEFAULT
    assert answered == BEYOND_DEFAULT


async def test_a_cap_caps_the_connections_to_a_host(saturation: _Saturation) -> None:
    llm.configure_pool(20)
    assert llm.pool_limits() == (llm.NO_CAP, 20)
    script = Script(default=Reply(text="ok"))
    async with ScriptedOpenAIServer(script, Faults(delay_s=3600)) as server:
        peak, answered = await _hold(server, 30, saturation)
    # The 21st call waited for a connection (and litellm said so); all were answered.
    assert saturation.count > 0
    assert peak == 20
    assert answered == 30


def test_a_negative_concurrency_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        llm.configure_pool(-1)
