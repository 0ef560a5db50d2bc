"""Merging shard run directories (`--shard i/N`) back into one run."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from sandbox.store import CorruptRecordError, Manifest, RunDirectoryBusy, RunLock, RunStore
from sandbox.summary import RunSummary, build_summary
from scenarios.records import EpisodeStatus, JournalEntry, Score


class MergeError(Exception):
    pass


def merge_runs(sources: list[Path], out: Path) -> RunSummary:
    """Combine runs of the same suite configuration; refuse mismatches and conflicting episodes."""
    if len(sources) < 1:
        raise MergeError("nothing to merge")
    if (out / "manifest.json").exists():
        holder = RunLock.holder(out)
        if holder is not None:
            raise MergeError(f"{out} is in use by another process (pid {holder})")
        raise MergeError(f"{out} already holds a run")
    stores = [RunStore(source) for source in sources]
    manifests: list[Manifest] = []
    for store in stores:
        try:
            manifests.append(store.read_manifest())
        except (FileNotFoundError, ValueError) as exc:
            raise MergeError(str(exc)) from exc
    first = manifests[0]
    for source, manifest in zip(sources, manifests, strict=True):
        if manifest.config_hash != first.config_hash:
            raise MergeError(
                f"{source} was run with a different configuration than {sources[0]} "
                f"({manifest.config_hash} != {first.config_hash}); only shards of one suite "
                "run can be merged"
            )
    owner: dict[str, Path] = {}
    finals: list[JournalEntry] = []
    scores: list[Score] = []
    for source, store in zip(sources, stores, strict=True):
        try:
            states = store.latest_states()
        except CorruptRecordError as exc:
            raise MergeError(str(exc)) from None
        for episode_id, entry in states.items():
            if episode_id in owner:
                raise MergeError(
                    f"episode {episode_id} appears in both {owner[episode_id]} and {source}"
                )
            owner[episode_id] = source
            finals.append(entry)
        done = {e for e, s in states.items() if s.status is EpisodeStatus.DONE}
        scores.extend(s for s in store.read_scores() if s.episode_id in done)

    try:
        lock = RunLock(out).acquire()
    except RunDirectoryBusy as exc:
        raise MergeError(str(exc)) from None
    try:
        if (out / "manifest.json").exists():  # another writer got there first
            raise MergeError(f"{out} already holds a run")
        return _write(out, sources, owner, manifests, finals, scores)
    finally:
        lock.release()


def _write(
    out: Path,
    sources: list[Path],
    owner: dict[str, Path],
    manifests: list[Manifest],
    finals: list[JournalEntry],
    scores: list[Score],
) -> RunSummary:
    first = manifests[0]
    target = RunStore(out)
    target.init()
    for episode_id, source in owner.items():
        path = RunStore(source).trajectory_path(episode_id)
        if path.exists():
            shutil.copy2(path, target.trajectory_path(episode_id))
    shards = sorted(str(m.config.shard) for m in manifests if m.config.shard is not None)
    total = sum(m.episodes_total for m in manifests)
    merged = first.model_copy(
        update={
            "run_id": out.name,
            "config": first.config.model_copy(update={"shard": None}),
            "episodes_total": total,
            "merged_from": [str(s.resolve()) for s in sources],
            "started_at": min(m.started_at for m in manifests),
            "finished_at": time.time(),
            "shards": shards,
        }
    )
    target.write_manifest(merged)
    target.journal_many(finals)
    target.append_scores(scores)
    target.close()
    summary = build_summary(target)
    target.write_json("summary.json", summary.model_dump(mode="json"))
    return summary
