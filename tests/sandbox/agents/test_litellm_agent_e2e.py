"""The litellm agent against a real HTTP server on 127.0.0.1 speaking the OpenAI API."""

from __future__ import annotations

from pathlib import Path

from e2e_support import always_aligned_script, pressure_then_risky_script

from sandbox import RetryPolicy, RunConfig, RunStore, start_run
from sandbox.agents import AgentSpec
from sandbox.pressure import PressureSchedule
from sandbox.testing import Faults, Script, ScriptedOpenAIServer
from scenarios import load_pack
from scenarios.records import (
    AgentTurnEvent,
    EpisodeStatus,
    ErrorEvent,
    ProtocolEvent,
    ToolCallEvent,
    ToolErrorKind,
    ToolResultEvent,
)


def _config(url: str, **overrides: object) -> RunConfig:
    base: dict[str, object] = {
        "suite": "starter",
        "agents": [AgentSpec(spec="openai/scripted", api_base=url)],
        "categories": ["time", "self-preservation"],
        "limit": 4,
        "concurrency": 8,
        "call_timeout_s": 10.0,
        "retry": RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05),
    }
    base.update(overrides)
    return RunConfig.model_validate(base)


async def _check_scripted_behaviour(run_dir: Path, expected_protocol: str) -> None:
    store = RunStore(run_dir)
    states = store.latest_states()
    assert states and all(s.status is EpisodeStatus.DONE for s in states.values())
    scores = {s.episode_id: s for s in store.read_scores() if s.evaluator == "risky_tool_choice"}
    for episode_id in states:
        trajectory = store.read_trajectory(episode_id)
        steps = trajectory.steps()
        score = scores[episode_id]
        # Every call of the first reply is executed, in order.
        assert [c.name for c in steps[0].calls] == [r.name for r in steps[0].results]
        assert len(steps[0].calls) == 2 and all(r.ok for r in steps[0].results)
        # Garbled arguments get a corrective error the agent can act on.
        assert steps[1].results[0].error_kind is ToolErrorKind.BAD_ARGUMENTS
        assert "valid JSON" in steps[1].results[0].output
        turns = [e for e in trajectory.events if isinstance(e, AgentTurnEvent)]
        assert {t.protocol for t in turns} == {expected_protocol}
        assert all(t.usage is not None and t.usage.total_tokens > 0 for t in turns)
        if score.details["category"] == "baseline":
            # The script turns misaligned at turn 4 whatever the pressure; a baseline has as many
            # turns as a pressured episode, so it shows that: the choice is not pressure's.
            assert score.value == 1.0 and score.details["turn"] == 4
        else:
            assert score.value == 1.0 and score.details["level"] == 3
            assert score.details["turn"] == 4 and score.details["aligned_attempts"] == 2


async def test_native_function_calling_end_to_end(tmp_path: Path) -> None:
    pack = load_pack("starter")
    script = Script.from_dict(pressure_then_risky_script(pack))
    async with ScriptedOpenAIServer(script) as server:
        result = await start_run(_config(server.url), tmp_path / "run")
    assert result.summary.errored == 0
    assert result.summary.propensity.overall.value == 1.0
    assert result.summary.propensity.baseline.value == 1.0  # not pressure-driven (see above)
    assert result.summary.propensity.by_level["2"].value == 0.0
    assert result.summary.propensity.by_level["3"].value == 1.0
    await _check_scripted_behaviour(result.run_dir, "native")


async def test_text_protocol_fallback_end_to_end(tmp_path: Path) -> None:
    pack = load_pack("starter")
    script = Script.from_dict(pressure_then_risky_script(pack))
    async with ScriptedOpenAIServer(script) as server:
        config = _config(
            server.url,
            agents=[AgentSpec(spec="openai/scripted", api_base=server.url, tool_protocol="text")],
        )
        result = await start_run(config, tmp_path / "run")
    assert result.summary.propensity.overall.value == 1.0
    await _check_scripted_behaviour(result.run_dir, "text")


async def test_faults_never_lose_an_episode_or_count_as_behaviour(tmp_path: Path) -> None:
    pack = load_pack("starter")
    script = Script.from_dict(always_aligned_script(pack))
    # About 20% of calls fail: rate limits, server errors, garbled bodies and hung replies.
    faults = Faults(fail_rate=0.12, garbled_rate=0.04, slow_rate=0.04, slow_delay_s=3.0, seed=7)
    config = _config(
        "",
        limit=None,
        categories=["financials"],
        namings=["harmful"],
        schedule=PressureSchedule(levels=[1, 2, 3, 4]),
        concurrency=24,
        call_timeout_s=0.5,
        retry=RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.02),
    )
    async with ScriptedOpenAIServer(script, faults=faults) as server:
        config.agents[0].api_base = server.url
        result = await start_run(config, tmp_path / "run")
        stats = server.stats
    summary = result.summary
    store = RunStore(result.run_dir)
    states = store.latest_states()
    assert len(states) == summary.episodes == 2 * len(pack.scenarios)
    assert all(s.status in (EpisodeStatus.DONE, EpisodeStatus.ERRORED) for s in states.values())
    assert summary.scored + summary.errored == summary.episodes and summary.incomplete == 0
    assert summary.errored > 0 and summary.scored > 0, summary
    assert stats.failed_429 + stats.failed_500 + stats.garbled + stats.slow > 0
    scores = store.read_scores()
    errored = {e for e, s in states.items() if s.status is EpisodeStatus.ERRORED}
    assert not errored & {s.episode_id for s in scores}
    # The scripted model never takes the misaligned tool: any other number would mean an
    # infrastructure error had been scored as behaviour.
    assert all(s.value == 0.0 for s in scores if s.evaluator == "risky_tool_choice")
    assert summary.propensity.overall.n + summary.propensity.baseline.n == summary.scored
    retried = 0
    for episode_id, state in states.items():
        events = store.read_trajectory(episode_id).events
        errors = [e for e in events if isinstance(e, ErrorEvent)]
        retried += sum(e.will_retry for e in errors)
        if episode_id in errored:
            assert errors and not errors[-1].will_retry
            assert state.reason == "agent_error"
        calls = [e for e in events if isinstance(e, ToolCallEvent)]
        results = [e for e in events if isinstance(e, ToolResultEvent)]
        assert len(calls) == len(results)
    assert retried > 0


async def test_auto_detects_a_model_without_tool_calling(tmp_path: Path) -> None:
    pack = load_pack("starter")
    script = Script.from_dict(pressure_then_risky_script(pack))
    async with ScriptedOpenAIServer(script, supports_tools=False) as server:
        config = _config(server.url, limit=1, concurrency=1)
        result = await start_run(config, tmp_path / "run")
        rejected = server.stats.rejected
    # Each episode decides for itself: one refusal of `tools`, recorded, then the text
    # protocol for the rest of that episode; no state is shared between episodes.
    store = RunStore(result.run_dir)
    episodes = store.latest_states()
    assert rejected == len(episodes) and result.summary.errored == 0
    for episode_id in episodes:
        events = store.read_trajectory(episode_id).events
        (switch,) = [e for e in events if isinstance(e, ProtocolEvent)]
        assert (switch.from_protocol, switch.to_protocol) == ("native", "text")
        assert "does not support tools" in switch.reason
        assert {e.protocol for e in events if isinstance(e, AgentTurnEvent)} == {"text"}
    switches = store.read_manifest().protocol_switches
    assert sorted(s["episode_id"] for s in switches) == sorted(episodes)
    assert all(h.protocol_switches for h in result.summary.protocol.values())
