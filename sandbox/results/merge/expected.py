"""The episodes a merged run must hold: what its configuration expands to over the pack as it
is now (:func:`_expected`), the refusal of a source's episode that is not one of them
(:func:`_check_expected`), and those no source finished, per agent and shard
(:func:`_missing_parts`: the merged run is then partial).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sandbox.plugins import path_sha256
from sandbox.results.merge.checks import EXAMPLES, _pack_digests
from sandbox.results.merge.records import MergeError, MissingPart
from sandbox.results.store import Manifest
from sandbox.runtime.config import EpisodeSpec, RunConfig, Shard
from sandbox.runtime.expansion import expand_episodes
from sandbox.runtime.injecting import InjectionPackError, apply_injection_pack
from sandbox.runtime.runs import pack_source
from scenarios.loader import ScenarioLoadError, load_pack
from scenarios.model import Pack
from scenarios.records import EpisodeStatus, JournalEntry
from tools import default_registry


def _expected(
    manifests: list[Manifest], config: RunConfig, log: Callable[[str], None]
) -> tuple[Pack, list[EpisodeSpec]]:
    """The pack (as it is now) and the episodes the merged configuration expands to."""
    manifest = next((m for m in manifests if Path(m.pack_path).exists()), manifests[0])
    where = pack_source(manifest)
    try:
        pack = load_pack(where, parameters_of=default_registry.parameters_of)
    except ScenarioLoadError as exc:
        raise MergeError(
            f"cannot merge: the pack {where} cannot be loaded, so the episodes the merged run "
            f"must hold cannot be known (restore the pack where the runs found it):\n{exc}"
        ) from None
    digests = _pack_digests(manifest)
    now = path_sha256(Path(where))[0]
    if digests and now is not None and now not in digests:
        log(
            f"warning: the pack {where} has changed since the runs read it: the merged run's "
            "episodes are those of the pack as it is now"
        )
    if config.inject is not None:
        try:
            pack = apply_injection_pack(pack, config.inject)
        except InjectionPackError as exc:
            raise MergeError(f"cannot merge: --inject: {exc}") from None
    try:
        return pack, expand_episodes(config, pack)
    except ValueError as exc:
        raise MergeError(f"cannot merge: {exc}") from None


def _missing_parts(
    expected: list[EpisodeSpec],
    entries: dict[str, tuple[Path, JournalEntry]],
    parts: list[list[tuple[str, RunConfig]]],
    pack: Pack,
) -> list[MissingPart]:
    """The expected episodes that no source finished, per agent: those of a shard of the
    agent's runs that no source holds, then those no source holds, then those a source holds
    unfinished (never started, or cut off)."""
    final = (EpisodeStatus.DONE, EpisodeStatus.ERRORED)
    by_agent: dict[str, list[str]] = {}
    for spec in expected:
        entry = entries.get(spec.id)
        if entry is None or entry[1].status not in final:
            by_agent.setdefault(spec.agent, []).append(spec.id)
    runs = [config for source in parts for _, config in source]
    found: list[MissingPart] = []
    for agent, ids in by_agent.items():
        left = set(ids)
        shards: dict[tuple[int, tuple[str, ...]], tuple[RunConfig, set[int]]] = {}
        for config in runs:
            labels = tuple(sorted(a.label for a in config.agents))
            if config.shard is not None and agent in labels:
                key = (config.shard.count, labels)
                shards.setdefault(key, (config, set()))[1].add(config.shard.index)
        for (count, _), (config, present) in shards.items():
            for index in sorted(set(range(1, count + 1)) - present):
                shard = config.model_copy(update={"shard": Shard(index=index, count=count)})
                part = [s.id for s in expand_episodes(shard, pack) if s.id in left]
                if part:
                    found.append(MissingPart(agent=agent, shard=f"{index}/{count}", episodes=part))
                    left -= set(part)
        absent = [e for e in ids if e in left and e not in entries]
        if absent:
            found.append(MissingPart(agent=agent, episodes=absent))
        unfinished: dict[str, list[str]] = {}
        for episode_id in ids:
            if episode_id in left and episode_id in entries:
                unfinished.setdefault(str(entries[episode_id][0]), []).append(episode_id)
        found += [
            MissingPart(agent=agent, source=source, episodes=part)
            for source, part in unfinished.items()
        ]
    return found


def _check_expected(
    sources: list[Path], taken: list[list[str]], expected: list[EpisodeSpec], config: RunConfig
) -> None:
    """Refuse episodes the merged configuration does not expand to: counted, they would make
    more episodes finished than the run holds."""
    ids = {spec.id for spec in expected}
    lines = [
        f"{len(outside)} episode(s) of {source}, e.g. {', '.join(outside[:EXAMPLES])}"
        for source, run in zip(sources, taken, strict=True)
        if (outside := [e for e in run if e not in ids])
    ]
    if lines:
        raise MergeError(
            f"cannot merge: episodes that are not episodes of the merged run (its configuration "
            f"over the pack {config.suite!r} as it is now expands to {len(ids)} episodes; has "
            "the pack lost scenarios since?):\n  " + "\n  ".join(lines)
        )
