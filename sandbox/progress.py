"""Progress display for long runs: a rich bar on a terminal, periodic plain lines elsewhere
(CI logs, redirected output), so a long run is never silent."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sandbox.config import EpisodeSpec
from scenarios.records import EpisodeStatus


class ConsoleProgress:
    def __init__(self, console: Console, *, plain_interval_s: float = 15.0) -> None:
        self.console = console
        self.done = 0
        self.errored = 0
        self.total = 0
        self.completed = 0
        self._interactive = console.is_terminal
        self._plain_interval_s = plain_interval_s
        self._last_plain = 0.0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ConsoleProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif self.total:
            self._plain(force=True)

    def start(self, total: int, completed: int) -> None:
        self.total, self.completed = total, completed
        if completed:
            self.console.print(f"resuming: {completed} of {total} episodes already finished")
        if self._interactive:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]episodes"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "[green]{task.fields[done]} scored[/] [red]{task.fields[errored]} errored"
                ),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                refresh_per_second=4,
            )
            self._task = self._progress.add_task(
                "run", total=total, completed=completed, done=0, errored=0
            )
            self._progress.start()
        else:
            self._plain(force=True)

    def advance(self, spec: EpisodeSpec, status: EpisodeStatus) -> None:
        self.completed += 1
        if status is EpisodeStatus.ERRORED:
            self.errored += 1
        else:
            self.done += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                advance=1,
                done=self.done,
                errored=self.errored,
            )
        else:
            self._plain()

    def _plain(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_plain < self._plain_interval_s:
            return
        self._last_plain = now
        self.console.print(
            f"episodes {self.completed}/{self.total} ({self.done} scored, {self.errored} errored)",
            highlight=False,
        )
