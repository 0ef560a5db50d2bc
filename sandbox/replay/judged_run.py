"""A re-judging written as a run directory, so ``propensity report DIR`` (and ``--html``)
shows its verdicts as it shows a run's.

The directory holds what a run holds (see docs/architecture.md): ``manifest.json`` (a
configuration naming the judge models, and a ``rescore`` block: the inputs, the judge models
and endpoints, whether the cache was used, the failures and the panel's agreement),
``journal.jsonl`` (each episode ``done``, or ``errored`` with the judge's failure or the
recording's own reason), ``trajectories/`` (our trajectories copied byte for byte, other
sources' episodes as read), ``scores.jsonl``, ``summary.json``, and ``rescore.json`` (the same
block as the manifest's, in full: every failure, every judge's labels).
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sandbox.agents import AgentSpec
from sandbox.replay.judging import RejudgeResult
from sandbox.replay.sources import Recorded, ReplaySourceError, SourceFormat
from sandbox.results.manifest import git_revision, interpreter, package_versions
from sandbox.results.store import Manifest, RunStore
from sandbox.results.summary import RunSummary, build_summary
from sandbox.runtime.config import RunConfig
from scenarios.records import EPISODE_ID_PATTERN, EpisodeStatus, JournalEntry

__all__ = ["RESCORE_FILE", "RESCORE_KEY", "check_out_dir", "rescore_record", "write_judged_run"]

RESCORE_KEY = "rescore"
RESCORE_FILE = "rescore.json"
_ID = re.compile(EPISODE_ID_PATTERN)


def rescore_record(
    result: RejudgeResult,
    inputs: Sequence[Path],
    endpoints: dict[str, str | None],
    *,
    cache: bool,
    sampling: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the re-judging was: inputs, judges, cache, sampling (temperature, seed), counts,
    failures, panel agreement."""
    return {
        "inputs": [str(p.resolve()) for p in inputs],
        "judge_models": result.models,
        "judge_api_bases": endpoints,
        "panel": len(result.models) > 1,
        "panel_verdict": "median (lower median for an even panel) of the judges' labels",
        "cache": cache,
        "sampling": sampling or {"temperature": 0.0, "seed": None},
        "episodes": len(result.episodes),
        "judged": len(result.judged),
        "errored": len(result.errored),
        "model_calls": result.calls,
        "cached_answers": result.cached_answers,
        "failures": result.failures,
        "failed_calls": [f.model_dump(mode="json") for e in result.episodes for f in e.failures],
        "agreement": {k: a.model_dump(mode="json") for k, a in result.agreement.items()},
    }


def _config(records: Sequence[Recorded], result: RejudgeResult, api_base: str | None) -> RunConfig:
    agents = sorted(
        {r.trajectory.started.agent for r in records if r.trajectory.started is not None}
    ) or ["recorded"]
    suites = sorted({str(r.meta.get("pack") or r.source_format.value) for r in records})
    return RunConfig(
        suite="rescore:" + "+".join(suites),
        agents=[AgentSpec(spec=agent) for agent in agents],
        judge_model=result.models[0],
        judge_api_base=api_base,
    )


def _copy_trajectory(store: RunStore, recorded: Recorded) -> None:
    target = store.trajectory_path(recorded.episode_id)
    source = Path(recorded.source_file)
    if recorded.source_format in (SourceFormat.RUN, SourceFormat.TRAJECTORY) and source.is_file():
        shutil.copyfile(source, target)
        return
    with target.open("w", encoding="utf-8") as handle:
        for event in recorded.trajectory.events:
            handle.write(store.redact(event.model_dump_json()) + "\n")


def check_out_dir(out: Path) -> None:
    """Refuse ``out`` before any judge is called: it must not hold a run, nor anything else
    (``ReplaySourceError``); an empty or missing directory is fine."""
    if RunStore(out).exists():
        raise ReplaySourceError(out, None, "already holds a run directory; choose a new --out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReplaySourceError(out, None, "is not an empty directory; choose a new --out")


def write_judged_run(
    out: Path,
    records: Sequence[Recorded],
    result: RejudgeResult,
    *,
    inputs: Sequence[Path],
    endpoints: dict[str, str | None],
    cache: bool,
    started_at: float,
    argv: Sequence[str] | None = None,
    sampling: dict[str, Any] | None = None,
) -> RunSummary:
    """Write the re-judged episodes to ``out`` (which must not hold a run) and summarise it."""
    check_out_dir(out)
    store = RunStore(out)
    seen: set[str] = set()
    for recorded in records:
        if not _ID.fullmatch(recorded.episode_id):
            raise ReplaySourceError(
                recorded.source_file,
                recorded.source_line,
                f"episode id {recorded.episode_id[:80]!r} cannot name a file in a run directory",
            )
        if recorded.episode_id in seen:
            raise ReplaySourceError(
                recorded.source_file,
                recorded.source_line,
                f"episode {recorded.episode_id} is in the inputs twice",
            )
        seen.add(recorded.episode_id)
    store.init()
    bases = {base for base in endpoints.values()}
    config = _config(records, result, bases.pop() if len(bases) == 1 else None)
    record = rescore_record(result, inputs, endpoints, cache=cache, sampling=sampling)
    python, plat = interpreter()
    manifest = Manifest(
        run_id=out.name,
        config=config,
        config_hash=config.identity_hash(),
        pack=config.suite,
        pack_path="",
        episodes_total=len(records),
        packages=package_versions(),
        git_revision=git_revision(),
        python=python,
        platform=plat,
        argv=list(argv if argv is not None else sys.argv),
        started_at=started_at,
        finished_at=time.time(),
    ).model_copy(update={RESCORE_KEY: {k: v for k, v in record.items() if k != "failed_calls"}})
    store.write_manifest(manifest)
    for recorded in records:
        _copy_trajectory(store, recorded)
    by_id = {e.episode_id: e for e in result.episodes}
    entries: list[JournalEntry] = []
    for recorded in records:
        episode = by_id[recorded.episode_id]
        if episode.status is EpisodeStatus.ERRORED:
            entries.append(
                JournalEntry(
                    episode_id=episode.episode_id,
                    status=EpisodeStatus.ERRORED,
                    reason=episode.error_reason,
                    error=episode.error_message,
                )
            )
        else:
            entries.append(
                JournalEntry(
                    episode_id=episode.episode_id, status=EpisodeStatus.DONE, reason="rescored"
                )
            )
    store.journal_many(entries)
    store.append_scores([s for e in result.episodes for s in e.scores])
    store.close()
    store.write_json(RESCORE_FILE, record)
    summary = build_summary(store)
    store.write_json("summary.json", summary.model_dump(mode="json"))
    return summary
