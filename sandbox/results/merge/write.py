"""The merged run written out: its manifest (with a :class:`MergeSource` per source and the
parts it lacked), the sources' trajectories copied, the journal and scores taken, its summary.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from sandbox.results.merge.records import MERGE_SOURCES_KEY, MISSING_KEY, MergeSource, MissingPart
from sandbox.results.store import Manifest, RunStore
from sandbox.results.summary import RunSummary, build_summary
from sandbox.runtime.config import EpisodeSpec, RunConfig
from scenarios.records import JournalEntry, Score


def _write(
    out: Path,
    sources: list[Path],
    entries: dict[str, tuple[Path, JournalEntry]],
    manifests: list[Manifest],
    taken: list[list[str]],
    finals: list[JournalEntry],
    scores: list[Score],
    config: RunConfig,
    expected: list[EpisodeSpec],
    missing: list[MissingPart],
) -> RunSummary:
    first = manifests[0]
    records = [
        MergeSource.of(str(source.resolve()), manifest, ids).model_dump(mode="json")
        for source, manifest, ids in zip(sources, manifests, taken, strict=True)
    ]
    target = RunStore(out)
    target.init()
    for episode_id, (source, _) in entries.items():
        path = RunStore(source).trajectory_path(episode_id)
        if path.exists():
            shutil.copy2(path, target.trajectory_path(episode_id))
    shards = sorted(str(m.config.shard) for m in manifests if m.config.shard is not None)
    merged = first.model_copy(
        update={
            "run_id": out.name,
            "config": config,
            "config_hash": config.identity_hash(),
            # What the merged configuration expands to, run or not: never fewer than counted.
            "episodes_total": len(expected),
            "merged_from": [str(s.resolve()) for s in sources],
            # Every source's user code and input files (the union, first seen first), so resume
            # and replay of the merged run load the plugins and agents of every source.
            "user_modules": _union(m.user_modules for m in manifests),
            "input_files": _union(m.input_files for m in manifests),
            "started_at": min(m.started_at for m in manifests),
            # A partial merged run is not finished, as an interrupted run is not.
            "finished_at": None if missing else time.time(),
            "resumed_at": [],
            "shards": shards,
            MERGE_SOURCES_KEY: records,
            MISSING_KEY: [part.model_dump(mode="json") for part in missing],
        }
    )
    target.write_manifest(merged)
    target.journal_many(finals)
    target.append_scores(scores)
    target.close()
    summary = build_summary(target)
    target.write_json("summary.json", summary.model_dump(mode="json"))
    return summary


R = TypeVar("R", bound=BaseModel)


def _union(lists: Iterable[list[R]]) -> list[R]:
    """The records of every list, each distinct record once, in first-seen order."""
    seen: dict[str, R] = {}
    for records in lists:
        for record in records:
            seen.setdefault(record.model_dump_json(), record)
    return list(seen.values())
