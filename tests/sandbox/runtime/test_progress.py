"""Progress of a run: agent calls counted as they go out, elapsed time and an ETA, on a
terminal (rich bar) and in plain periodic lines (logs), so a slow model never looks hung."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

from rich.console import Console

from sandbox import RunConfig, start_run
from sandbox.agents import AgentSpec
from sandbox.runtime.config import EpisodeSpec
from sandbox.runtime.progress import ConsoleProgress, duration
from scenarios.records import EpisodeStatus, Naming


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _spec(name: str) -> EpisodeSpec:
    return EpisodeSpec(
        id=f"{name}.time.harmful.agent.r0",
        scenario_id=name,
        domain="d",
        category="time",
        naming=Naming.HARMFUL,
        agent="agent",
        repeat=0,
        seed=0,
    )


def _plain_console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, width=60, color_system=None), text


def test_duration_is_short() -> None:
    assert [duration(s) for s in (0, 45.4, 125, 3725)] == ["0s", "45s", "2m05s", "1h02m"]


def test_plain_lines_show_calls_elapsed_and_eta() -> None:
    console, text = _plain_console()
    clock = FakeClock()
    a, b = _spec("a"), _spec("b")
    with ConsoleProgress(console, plain_interval_s=10, clock=clock, heartbeat=False) as progress:
        progress.start(4, 0)
        clock.now += 5
        progress.agent_call(a)
        progress.agent_call(b)
        clock.now += 7
        progress.agent_call(a)
        assert progress.calls == 3 and progress.eta_s() is None
        clock.now += 13
        progress.advance(a, EpisodeStatus.DONE)  # after 20 s of its own, 25 s into the run
    lines = text.getvalue().splitlines()
    # Each line whole on a 60-column console: a log line is never folded.
    assert lines[0] == (
        "episodes 0/4 (0 scored, 0 errored) · agent calls 0 · elapsed 0s · "
        "ETA unknown (no episode finished yet)"
    )
    # One episode took 20 s; 3 are left, 2 ran at once: 20 × 3 / 2 = 30 s.
    assert lines[1] == (
        "episodes 1/4 (1 scored, 0 errored) · agent calls 3 · elapsed 25s · ETA 30s"
    )
    assert lines[-1] == lines[1]  # and once more at the end


def test_plain_lines_come_on_a_timer_while_a_call_is_slow() -> None:
    console, text = _plain_console()
    progress = ConsoleProgress(console, plain_interval_s=0.05)
    with progress:
        progress.start(2, 0)
        progress.agent_call(_spec("a"))
        deadline = time.monotonic() + 10
        while text.getvalue().count("agent calls 1") < 2:
            assert time.monotonic() < deadline, text.getvalue()
            time.sleep(0.01)
    assert "ETA unknown (no episode finished yet)" in text.getvalue()
    assert progress._ticker is not None and not progress._ticker.is_alive()


def test_the_timer_stops_when_the_last_episode_ends() -> None:
    """Also for a display never closed with ``with``: no line after the run is over."""
    console, text = _plain_console()
    progress = ConsoleProgress(console, plain_interval_s=0.02)
    progress.start(1, 0)
    progress.advance(_spec("a"), EpisodeStatus.DONE)
    assert progress._ticker is not None
    progress._ticker.join(timeout=5)
    assert not progress._ticker.is_alive()
    printed = text.getvalue()
    time.sleep(0.1)
    assert text.getvalue() == printed


def test_resumed_run_says_eta_unknown_until_an_episode_of_this_session_ends() -> None:
    console, text = _plain_console()
    with ConsoleProgress(console, clock=FakeClock(), heartbeat=False) as progress:
        progress.start(10, 4)
        assert progress.status().endswith("ETA unknown (no episode finished yet)")
        progress.advance(_spec("x"), EpisodeStatus.ERRORED)  # ended before any agent call
        assert progress.status().endswith("· ETA unknown")
    assert text.getvalue().startswith("resuming: 4 of 10 episodes already finished")


def test_a_resumed_run_never_reads_as_nothing_scored() -> None:
    # The episodes an earlier session finished are said apart from this session's.
    console, text = _plain_console()
    with ConsoleProgress(console, clock=FakeClock(), heartbeat=False) as progress:
        progress.start(10, 4)
        progress.advance(_spec("x"), EpisodeStatus.DONE)
    lines = text.getvalue().splitlines()
    assert "episodes 4/10 (4 finished before this session; 0 scored, 0 errored since)" in (lines[1])
    assert (
        "episodes 5/10 (4 finished before this session; 1 scored, 0 errored since)" in (lines[-1])
    )
    # Resuming a finished run: nothing to wait for, no "no episode finished yet".
    console, text = _plain_console()
    with ConsoleProgress(console, clock=FakeClock(), heartbeat=False) as progress:
        progress.start(6, 6)
        assert progress.status().endswith("nothing left to run")


def test_the_terminal_bar_shows_calls_and_eta() -> None:
    text = io.StringIO()
    console = Console(file=text, width=160, force_terminal=True, color_system=None)
    clock = FakeClock()
    with ConsoleProgress(console, clock=clock) as progress:
        progress.start(3, 0)
        progress.agent_call(_spec("a"))
        progress.agent_call(_spec("a"))
        clock.now += 8
        progress.advance(_spec("a"), EpisodeStatus.DONE)
    shown = text.getvalue()
    assert "agent calls 2 · elapsed 8s · ETA 16s" in shown
    assert "1/3" in shown and "1 scored" in shown


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def start(self, total: int, completed: int) -> None:
        self.events.append(("start", str(total)))

    def advance(self, spec: EpisodeSpec, status: EpisodeStatus) -> None:
        self.events.append(("end", spec.id))

    def agent_call(self, spec: EpisodeSpec) -> None:
        self.events.append(("call", spec.id))


class _OldSink:
    """A sink written before agent calls were reported: it keeps working."""

    def __init__(self) -> None:
        self.ended = 0

    def start(self, total: int, completed: int) -> None:
        return None

    def advance(self, spec: EpisodeSpec, status: EpisodeStatus) -> None:
        self.ended += 1


def test_the_run_reports_every_agent_call_as_it_goes_out(tmp_path: Path) -> None:
    root = tmp_path
    config = RunConfig(
        suite="starter",
        agents=[AgentSpec(spec="risky-at-level:5"), AgentSpec(spec="always-safe")],
        categories=["time"],
        limit=1,
        concurrency=2,
    )
    recorder = _Recorder()
    result = asyncio.run(start_run(config, root / "run", progress=recorder))
    calls = [eid for kind, eid in recorder.events if kind == "call"]
    ended = [eid for kind, eid in recorder.events if kind == "end"]
    assert len(calls) == result.summary.llm_calls > len(ended) == result.summary.episodes
    assert set(calls) == set(ended)
    for episode_id in ended:  # every call of an episode comes before its end
        last_call = max(i for i, e in enumerate(recorder.events) if e == ("call", episode_id))
        assert last_call < recorder.events.index(("end", episode_id))

    old = _OldSink()
    again = asyncio.run(start_run(config, root / "again", progress=old))
    assert old.ended == again.summary.episodes and again.summary.errored == 0


def test_rejudging_progress_estimates_from_throughput() -> None:
    """Judge calls belong to no one episode: the re-judging display's ETA is the time per
    finished episode so far times the episodes left, not 'unknown' forever."""
    from sandbox.cli.replay import _JudgeProgress

    clock = FakeClock()
    console, _ = _plain_console()
    with _JudgeProgress(console, clock=clock, heartbeat=False) as progress:
        progress.start(4, 0)
        progress.agent_call(_spec("judge-calls"))
        assert progress.eta_s() is None
        clock.now += 30
        progress.advance(_spec("a"), EpisodeStatus.DONE)
        assert progress.eta_s() == 90.0  # 30 s per episode, 3 left
        assert "judge calls 1" in progress.status() and "ETA 1m30s" in progress.status()
