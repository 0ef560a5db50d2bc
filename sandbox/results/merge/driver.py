"""The merge itself (:func:`merge_runs`): the sources read and checked, the episode each is
taken from decided (never one twice), the merged configuration made, the merged run written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import ValidationError

from sandbox.agents.specs import AgentSpec
from sandbox.results.merge.checks import (
    EXAMPLES,
    _pack_digests,
    check_mergeable,
    check_same_content,
    check_same_pack,
)
from sandbox.results.merge.expected import _check_expected, _expected, _missing_parts
from sandbox.results.merge.records import MergeError, _leaves
from sandbox.results.merge.write import _write
from sandbox.results.store import CorruptRecordError, Manifest, RunDirectoryBusy, RunLock, RunStore
from sandbox.results.summary import RunSummary
from sandbox.runtime.config import RunConfig
from scenarios.records import EpisodeStatus, JournalEntry, Score


def merge_runs(
    sources: list[Path], out: Path, *, log: Callable[[str], None] = lambda _: None
) -> RunSummary:
    """Combine shards of one run, or runs of one suite with different agents, into ``out``.

    Refuses (:class:`MergeError`) runs whose settings differ where they must be equal (each
    such setting named with its value in each run), packs that differ between the runs, an
    episode recorded in more than one run, and an episode the merged configuration does not
    expand to. ``log`` receives what does not stop the merge: runs made by different harness
    versions, and which expected episodes no run finished (the merged run is then partial:
    they are pending, and ``propensity run --resume OUT`` runs them).
    """
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
    for source, manifest in zip(sources, manifests, strict=True):
        if manifest.branch is not None:
            raise MergeError(
                f"cannot merge: {source} is a branched replay (one episode continued from a "
                "recorded one), not a run of a suite"
            )
    parts = [_leaves(source, m) for source, m in zip(sources, manifests, strict=True)]
    check_mergeable(
        sources,
        [m.config for m in manifests],
        [m.pack for m in manifests],
        parts,
        [set(_pack_digests(m)) for m in manifests],
    )
    resolved = [source.resolve() for source in sources]
    for index, source in enumerate(sources):
        if resolved[index] in resolved[:index]:
            raise MergeError(f"{source} is given twice: each run can be merged once only")
    states: list[dict[str, JournalEntry]] = []
    source_scores: list[list[Score]] = []
    for store in stores:
        try:
            states.append(store.latest_states())
            source_scores.append(store.read_scores())
        except CorruptRecordError as exc:
            raise MergeError(str(exc)) from None
    entries = _owners(sources, states)
    taken = [
        [e for e in run if entries[e][0] == source]
        for source, run in zip(sources, states, strict=True)
    ]
    check_same_content(sources, taken)
    check_same_pack(sources, manifests, taken, log)
    _note_versions(sources, manifests, log)
    config = _merged_config(manifests)
    pack, expected = _expected(manifests, config, log)
    _check_expected(sources, taken, expected, config)
    missing = _missing_parts(expected, entries, parts, pack)
    finals = [entries[e][1] for ids in taken for e in ids]
    finals += [
        JournalEntry(episode_id=spec.id, status=EpisodeStatus.PENDING)
        for spec in expected
        if spec.id not in entries
    ]
    scores = [
        score
        for ids, run_scores, run_states in zip(taken, source_scores, states, strict=True)
        for score in run_scores
        if score.episode_id in ids and run_states[score.episode_id].status is EpisodeStatus.DONE
    ]

    try:
        lock = RunLock(out).acquire()
    except RunDirectoryBusy as exc:
        raise MergeError(str(exc)) from None
    try:
        if (out / "manifest.json").exists():  # another writer got there first
            raise MergeError(f"{out} already holds a run")
        summary = _write(
            out, sources, entries, manifests, taken, finals, scores, config, expected, missing
        )
    finally:
        lock.release()
    if missing:
        count = sum(len(part.episodes) for part in missing)
        log(
            f"warning: the merged run is partial: {count} of its {len(expected)} episodes were "
            "not finished in the runs merged:\n  "
            + "\n  ".join(part.render() for part in missing)
            + f"\nThey are pending (counted as incomplete, never as scored): run them with "
            f"`propensity run --resume {out}`, or merge {out} with the runs that hold them."
        )
    return summary


def _owners(
    sources: list[Path], states: list[dict[str, JournalEntry]]
) -> dict[str, tuple[Path, JournalEntry]]:
    """Episode id → the run it is taken from and its last journal entry there. An episode
    recorded (started) in two runs is refused; one only pending in a run is taken from the run
    that recorded it."""
    entries: dict[str, tuple[Path, JournalEntry]] = {}
    duplicates: dict[tuple[Path, Path], list[str]] = {}
    for source, run in zip(sources, states, strict=True):
        for episode_id, entry in run.items():
            held = entries.get(episode_id)
            if held is None or held[1].status is EpisodeStatus.PENDING:
                entries[episode_id] = (source, entry)
            elif entry.status is not EpisodeStatus.PENDING:
                duplicates.setdefault((held[0], source), []).append(episode_id)
    if duplicates:
        lines = [
            f"{len(ids)} episode(s) are in both {first} and {other}, e.g. "
            + ", ".join(sorted(ids)[:EXAMPLES])
            for (first, other), ids in duplicates.items()
        ]
        raise MergeError(
            "cannot merge: an episode may come from one run only, never be counted twice:\n  "
            + "\n  ".join(lines)
            + "\nMerge runs whose agents differ, or the disjoint shards of one run."
        )
    return entries


def _merged_config(manifests: list[Manifest]) -> RunConfig:
    """The first run's configuration with every run's agents and no shard."""
    try:
        return RunConfig.model_validate(
            {
                **manifests[0].config.model_dump(),
                "shard": None,
                "agents": _union_agents(m.config for m in manifests),
            }
        )
    except ValidationError as exc:
        raise MergeError(f"the merged configuration is not valid: {exc}") from None


def _note_versions(
    sources: list[Path], manifests: list[Manifest], log: Callable[[str], None]
) -> None:
    """Say when the runs were made by different harness versions (kept per source)."""
    first = manifests[0]
    for source, manifest in zip(sources[1:], manifests[1:], strict=True):
        for what, mine, theirs in (
            (
                "propensity-sandbox",
                first.packages.get("propensity-sandbox"),
                manifest.packages.get("propensity-sandbox"),
            ),
            ("git revision", first.git_revision, manifest.git_revision),
        ):
            if mine != theirs:
                log(
                    f"note: {source} was made with {what} {theirs}, {sources[0]} with {mine} "
                    "(each run's versions are kept in the merged manifest)"
                )


def _union_agents(configs: Iterable[RunConfig]) -> list[AgentSpec]:
    agents: dict[str, AgentSpec] = {}
    for config in configs:
        for agent in config.agents:
            agents.setdefault(agent.label, agent)
    return list(agents.values())
