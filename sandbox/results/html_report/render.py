"""Entry points: gather a run's numbers and transcripts, and write them as one HTML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sandbox.results.html_report.data import collect, latest_scores
from sandbox.results.html_report.page import render_page
from sandbox.results.html_report.transcript import episode_view
from sandbox.results.store import CorruptRecordError, RunStore
from scenarios.records import EpisodeStatus, Score

REPORT_NAME = "report.html"


def _views(store: RunStore, episode_ids: list[str]) -> list[dict[str, Any]]:
    states = store.latest_states()
    done = {e for e, s in states.items() if s.status is EpisodeStatus.DONE}
    scores: dict[str, list[Score]] = {}
    for (episode_id, _), score in latest_scores(store, done).items():
        scores.setdefault(episode_id, []).append(score)
    views = []
    for episode_id in episode_ids:
        path = store.trajectory_path(episode_id)
        trajectory, problem = None, None
        try:
            trajectory = store.read_trajectory(episode_id) if path.exists() else None
        except (OSError, CorruptRecordError) as exc:
            # Another episode's trajectory, a corrupt line: shown as such, never as this
            # episode's (the summary counts it among the incomplete trajectories).
            problem = f"the trajectory could not be read: {exc}"
        views.append(episode_view(trajectory, scores.get(episode_id, []), problem))
    return views


def render_html_report(run_dir: Path | str) -> str:
    """The report of the run in ``run_dir`` as one HTML document (a string)."""
    store = RunStore(run_dir)
    data = collect(store)
    return render_page(data, _views(store, [e.id for e in data.episodes]))


def write_html_report(run_dir: Path | str, out: Path | str | None = None) -> Path:
    """Write the report (default ``RUN_DIR/report.html``) atomically and return its path."""
    target = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    html = render_html_report(run_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target
