"""Progress display for long runs: a rich bar on a terminal, periodic plain lines elsewhere
(CI logs, redirected output), so a long run is never silent.

Both show the episodes finished, the agent calls made so far (counted as each call goes out, so
a slow local model visibly works long before its first episode ends), the time elapsed and an
estimate of the time left. The estimate is the mean duration of the episodes finished in this
session (from their first agent call to their end) times the episodes left, divided by the
number of episodes seen running at once; before any episode has finished it is "ETA unknown".
Plain lines come every ``plain_interval_s`` seconds whether or not an episode finished.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

from sandbox.runtime.config import EpisodeSpec
from scenarios.records import EpisodeStatus


def duration(seconds: float) -> str:
    """``45s``, ``2m05s``, ``1h02m``: short enough for a progress line."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class _StatusColumn(ProgressColumn):
    """Agent calls, elapsed time and ETA, read from the display at every refresh."""

    def __init__(self, progress: ConsoleProgress) -> None:
        super().__init__()
        self._owner = progress

    def render(self, task: Task) -> Text:
        return Text(self._owner.status(), style="cyan")


class ConsoleProgress:
    """A :class:`~sandbox.runtime.orchestrator.ProgressSink` for the console (also takes agent
    calls)."""

    def __init__(
        self,
        console: Console,
        *,
        plain_interval_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: bool = True,
    ) -> None:
        self.console = console
        self.done = 0
        self.errored = 0
        self.total = 0
        self.completed = 0
        self.calls = 0
        self._clock = clock
        self._interactive = console.is_terminal
        self._plain_interval_s = plain_interval_s
        self._heartbeat = heartbeat
        self._last_plain = 0.0
        self._started_at: float | None = None
        # Episodes running now (first agent call → time), and the durations of those finished.
        self._running: dict[str, float] = {}
        self._most_at_once = 0
        self._finished_before = 0  # by an earlier session of a resumed run
        self._durations: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ConsoleProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._progress is not None:
            self._progress.stop()
        elif self.total:
            self._plain(force=True)

    def start(self, total: int, completed: int) -> None:
        self.total, self.completed = total, completed
        self._finished_before = completed
        self._started_at = self._clock()
        if completed:
            self.console.print(f"resuming: {completed} of {total} episodes already finished")
        if self._interactive:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]episodes"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    ("[dim]" + f"{completed} earlier · " + "[/]" if completed else "")
                    + "[green]{task.fields[done]} scored[/] [red]{task.fields[errored]} errored"
                ),
                _StatusColumn(self),
                console=self.console,
                refresh_per_second=4,
            )
            self._task = self._progress.add_task(
                "run", total=total, completed=completed, done=0, errored=0
            )
            self._progress.start()
            return
        self._plain(force=True)
        if self._heartbeat and self._ticker is None and completed < total:
            self._ticker = threading.Thread(
                target=self._tick, name="propensity-progress", daemon=True
            )
            self._ticker.start()

    def agent_call(self, spec: EpisodeSpec) -> None:
        """An agent call (one attempt) of ``spec`` goes out."""
        with self._lock:
            self.calls += 1
            if spec.id not in self._running:
                self._running[spec.id] = self._clock()
                self._most_at_once = max(self._most_at_once, len(self._running))

    def advance(self, spec: EpisodeSpec, status: EpisodeStatus) -> None:
        with self._lock:
            self.completed += 1
            if status is EpisodeStatus.ERRORED:
                self.errored += 1
            else:
                self.done += 1
            began = self._running.pop(spec.id, None)
            if began is not None:
                self._durations.append(self._clock() - began)
            if self.completed >= self.total:
                self._stop.set()  # nothing left to wait for: the timer's lines end here
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                advance=1,
                done=self.done,
                errored=self.errored,
            )
        else:
            self._plain()

    def _split(self) -> str:
        """How the finished episodes split: this session's scored and errored, and those an
        earlier session of a resumed run finished (their split is in the report)."""
        now = f"{self.done} scored, {self.errored} errored"
        if not self._finished_before:
            return now
        return f"{self._finished_before} finished before this session; {now} since"

    def eta_s(self) -> float | None:
        """Seconds left by the estimate (see the module docstring); None while unknown."""
        with self._lock:
            if not self._durations:
                return None
            remaining = max(0, self.total - self.completed)
            at_once = max(1, min(self._most_at_once, remaining))
            return sum(self._durations) / len(self._durations) * remaining / at_once

    def status(self) -> str:
        """``agent calls N · elapsed T · ETA T`` (or ``ETA unknown``)."""
        elapsed = 0.0 if self._started_at is None else self._clock() - self._started_at
        eta = self.eta_s()
        if self.total and self.completed >= self.total:
            left = "done" if self.completed > self._finished_before else "nothing left to run"
        elif eta is None:
            yet = self.completed == self._finished_before
            left = "ETA unknown (no episode finished yet)" if yet else "ETA unknown"
        else:
            left = f"ETA {duration(eta)}"
        return f"agent calls {self.calls} · elapsed {duration(elapsed)} · {left}"

    def _tick(self) -> None:
        """Plain lines on a timer too: a slow episode must not look like a hung run."""
        while not self._stop.wait(self._plain_interval_s):
            self._plain()

    def _plain(self, force: bool = False) -> None:
        with self._lock:
            now = self._clock()
            if not force and now - self._last_plain < self._plain_interval_s:
                return
            self._last_plain = now
            counts = f"episodes {self.completed}/{self.total} ({self._split()})"
        self.console.print(f"{counts} · {self.status()}", highlight=False, soft_wrap=True)
