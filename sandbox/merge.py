"""Merging run directories into one run: the shards of one suite run (`--shard i/N`), and runs
of the same suite with different agents (an agent added to an existing run, for one report).

The merged run is what a single `propensity run` with all the agents would have written, so its
report, `compare` and `--resume` treat it like any other run. That decides the rule:

* **Must be equal** — everything that decides which episodes exist or what one of them
  measures: the suite and the pack's content, the pressure categories, baseline, namings,
  schedule, repeats and seed, the scenario selection (``limit``, ``scenario_ids``), turn and
  tool-call limits, stopping, call reading, code-sandbox limits and environment, judge and
  emulator models. Everything in ``RunConfig`` not listed below. The pack's content is checked
  on the episodes themselves: the system prompt, task and tools recorded at the start of every
  episode of one scenario, category and naming must be the same in every run; and on the pack:
  the runs' recorded pack digests (``input_files``) must match, or, where the packs as recorded
  are still on disk, hold the same scenarios with the same content. One pack at two paths is
  one pack (the suite's path may then differ).
* **May differ** — the agents (the merged run has them all; an agent found in several runs must
  have the same settings there, and those runs must have the same agents: they are shards of
  one run), the shard, and how a run was executed rather than what it measured
  (:data:`EXECUTION_SETTINGS`: concurrency, sandbox pool, episode and call timeouts, retries,
  cache directory). The merged configuration takes those from the first run; each run's own
  configuration is kept in the merged manifest (``merge_sources``).
* **Never twice** — an episode id recorded in two runs is refused, never counted twice. One
  that is only pending in a run (never started there: nothing recorded) is taken from the run
  that has it, so a partial merged run can be merged again with the shard it lacked.

**Complete or said to be partial.** The merged run's episodes are those its configuration
expands to (:func:`~sandbox.config.expand_episodes` over the union of the agents, no shard),
and its ``episodes_total`` is that expansion's size. Every expected episode that no run holds
is journaled as pending, so ``report`` and ``summary.json`` count it as incomplete and
``--resume`` of the merged run runs exactly those; the merge says which, per agent and shard
(``agent X: shard 2/2 missing (N episodes)``), and records them in the manifest
(``missing_at_merge``). An episode of a run that is not one of these is refused (the pack lost
its scenario). A merged run can be a source: its recorded sources are its parts.

The merged manifest's ``merged_from`` lists the source directories; ``merge_sources`` holds one
:class:`MergeSource` per source (its configuration, versions and the episode ids taken from it;
for a source that was itself merged, its own sources), so where every episode came from stays
on record (see :func:`merge_sources`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from sandbox.agents.specs import AgentSpec
from sandbox.config import EpisodeSpec, RunConfig, Shard, expand_episodes
from sandbox.orchestrator import pack_source
from sandbox.plugins import path_sha256
from sandbox.store import CorruptRecordError, Manifest, RunDirectoryBusy, RunLock, RunStore
from sandbox.summary import RunSummary, build_summary
from scenarios.loader import ScenarioLoadError, load_pack
from scenarios.model import Pack
from scenarios.records import EpisodeStatus, JournalEntry, Score
from tools import default_registry

# RunConfig fields that may differ between merged runs: how a run was executed, not what it
# measured. They decide whether an episode finishes (an errored one is reported apart and never
# scored) and how fast, never what a scored episode shows.
EXECUTION_SETTINGS: dict[str, str] = {
    "shard": "which part of the suite a run holds",
    "concurrency": "episodes run at once",
    "sandbox_pool": "warm code sandboxes kept",
    "episode_timeout_s": "an episode over it is errored, not scored",
    "call_timeout_s": "a call over it is retried, then the episode is errored",
    "retry": "retries of failed provider calls",
    "cache_dir": "where emulator and judge answers are cached",
}
MERGE_SOURCES_KEY = "merge_sources"
MISSING_KEY = "missing_at_merge"
# How many examples a refusal names (all are counted).
EXAMPLES = 5
_VALUE_CHARS = 300


class _NotSet:
    """A setting one run has and the other lacks (shown as ``(not set)``)."""

    def __repr__(self) -> str:
        return "(not set)"


_NOT_SET = _NotSet()


class MergeError(Exception):
    """The runs cannot be merged (a differing setting, a duplicate episode, a busy target)."""


class Difference(BaseModel):
    """One setting (dotted path into ``RunConfig``) whose value differs between two runs."""

    path: str
    first: Any
    other: Any

    def render(self, first_name: str, other_name: str) -> str:
        return (
            f"{self.path}: {_show(self.first)} in {first_name}, {_show(self.other)} in {other_name}"
        )


class MergeSource(BaseModel):
    """One merged run, as the merged manifest keeps it (under ``merge_sources``)."""

    path: str
    run_id: str
    config: RunConfig
    config_hash: str
    pack: str
    pack_path: str
    episodes_total: int
    started_at: float
    finished_at: float | None = None
    git_revision: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)
    # The source was itself a merge of these directories.
    merged_from: list[str] = Field(default_factory=list)
    # Every episode id the merged run took from this source.
    episodes: list[str] = Field(default_factory=list)
    # The source was itself a merge: its own sources, as its manifest recorded them.
    sources: list[MergeSource] = Field(default_factory=list)

    def leaves(self) -> list[MergeSource]:
        """The runs this source was made of: itself, or its sources' runs for a merged one."""
        return [leaf for s in self.sources for leaf in s.leaves()] if self.sources else [self]


class MissingPart(BaseModel):
    """Episodes of the merged run that no source finished, of one agent (in the manifest under
    ``missing_at_merge``): a shard no source holds, episodes no source holds, or episodes a
    source holds unfinished."""

    agent: str
    shard: str | None = None  # "I/N": a shard of the agent's runs that no source holds
    source: str | None = None  # the source that holds them unfinished
    episodes: list[str] = Field(default_factory=list)

    def render(self) -> str:
        count = f"{len(self.episodes)} episode{'' if len(self.episodes) == 1 else 's'}"
        if self.shard is not None:
            return f"agent {self.agent}: shard {self.shard} missing ({count})"
        if self.source is not None:
            return f"agent {self.agent}: {count} unfinished in {self.source}"
        return f"agent {self.agent}: {count} missing (in none of the runs)"


def merge_sources(manifest: Manifest) -> list[MergeSource]:
    """The sources recorded in a merged run's manifest (empty for a run that is no merge)."""
    extra = manifest.model_extra or {}
    return [MergeSource.model_validate(item) for item in extra.get(MERGE_SOURCES_KEY) or []]


def missing_at_merge(manifest: Manifest) -> list[MissingPart]:
    """The episodes a merged run lacked when it was merged (empty when it lacked none)."""
    extra = manifest.model_extra or {}
    return [MissingPart.model_validate(item) for item in extra.get(MISSING_KEY) or []]


def _leaves(source: Path, manifest: Manifest) -> list[tuple[str, RunConfig]]:
    """(directory, configuration) of every run a source was made of: itself, or for a merged
    run the runs recorded as its sources (a merge of merges down to the runs themselves)."""
    records = merge_sources(manifest)
    if not records:
        return [(str(source), manifest.config)]
    return [(leaf.path, leaf.config) for record in records for leaf in record.leaves()]


def episode_origins(manifest: Manifest) -> dict[str, str]:
    """Episode id → the directory of the run it was merged from (empty for no merge)."""
    return {eid: source.path for source in merge_sources(manifest) for eid in source.episodes}


# -- the rule --------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, _NotSet):
        return repr(value)
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) > _VALUE_CHARS:
        return f"{text[:_VALUE_CHARS]}… ({len(text)} characters)"
    return text


def _diff(path: str, first: Any, other: Any) -> list[Difference]:
    if isinstance(first, dict) and isinstance(other, dict):
        found: list[Difference] = []
        keys = list(first) + [k for k in other if k not in first]
        for key in keys:
            sub = f"agents[{key}]" if path == "agents" else f"{path}.{key}" if path else str(key)
            found += _diff(sub, first.get(key, _NOT_SET), other.get(key, _NOT_SET))
        return found
    return [] if first == other else [Difference(path=path, first=first, other=other)]


def _dump(config: RunConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    data["agents"] = {agent["spec"]: agent for agent in data["agents"]}
    return data


def config_differences(first: RunConfig, other: RunConfig) -> list[Difference]:
    """Every setting in which ``other`` differs from ``first``, as dotted paths (agents by
    label: ``agents[LABEL]`` for an agent of one run only, ``agents[LABEL].FIELD`` for an agent
    whose settings differ)."""
    return _diff("", _dump(first), _dump(other))


def blocking(difference: Difference) -> bool:
    """Whether this difference makes two runs impossible to merge into one (see the module)."""
    top = difference.path.split(".")[0].split("[")[0]
    if top in EXECUTION_SETTINGS:
        return False
    # An agent of one run only is what an agent merge is for; its settings differing is not.
    return not (top == "agents" and "." not in difference.path)


def check_mergeable(
    sources: list[Path],
    configs: list[RunConfig],
    packs: list[str],
    parts: list[list[tuple[str, RunConfig]]] | None = None,
    pack_digests: list[set[str]] | None = None,
) -> None:
    """Raise :class:`MergeError` listing every setting that must be equal and is not, and every
    agent whose runs do not hold the same agents (see the module docstring for the rule).
    ``parts`` are the runs each source was made of (a merged source's recorded sources); by
    default each source is one run. With ``pack_digests`` (each run's recorded pack sha256),
    the suite's path may differ between runs that recorded their pack: its content decides
    (:func:`check_same_pack`), so one pack at two paths is one pack."""
    if parts is None:
        parts = [[(str(source), config)] for source, config in zip(sources, configs, strict=True)]
    problems: list[str] = []
    first, first_config = sources[0], configs[0]
    digests = pack_digests or [set() for _ in sources]
    for index, (source, config, pack) in enumerate(
        zip(sources[1:], configs[1:], packs[1:], strict=True), start=1
    ):
        recorded = bool(digests[0]) and bool(digests[index])
        lines = [
            d.render(str(first), str(source))
            for d in config_differences(first_config, config)
            if blocking(d) and not (d.path == "suite" and recorded)
        ]
        if pack != packs[0]:
            lines.insert(0, f"pack: {pack!r} in {source}, {packs[0]!r} in {first}")
        if lines:
            problems.append(
                f"{source} was run with a different configuration than {first}:\n  "
                + "\n  ".join(lines)
            )
    # Runs that share an agent are shards of one run. A merged source counts as the runs it
    # was made of, so a partial merged run and the shard it lacks merge.
    agent_sets: dict[str, tuple[str, list[str]]] = {}
    for source, runs in zip(sources, parts, strict=True):
        for run, config in runs:
            where = str(source) if run == str(source) else f"{run} (merged into {source})"
            labels = [agent.label for agent in config.agents]
            for label in labels:
                seen = agent_sets.setdefault(label, (where, labels))
                if sorted(seen[1]) != sorted(labels):
                    problems.append(
                        f"agent {label!r} is in {seen[0]} (agents: {', '.join(seen[1])}) and in "
                        f"{where} (agents: {', '.join(labels)}): runs that share an agent must "
                        "be shards of one run, with the same agents"
                    )
    if problems:
        allowed = ", ".join(["agents", *EXECUTION_SETTINGS])
        raise MergeError(
            "cannot merge: "
            + "\n".join(problems)
            + f"\nOnly these settings may differ between merged runs: {allowed}."
        )


def _union_agents(configs: Iterable[RunConfig]) -> list[AgentSpec]:
    agents: dict[str, AgentSpec] = {}
    for config in configs:
        for agent in config.agents:
            agents.setdefault(agent.label, agent)
    return list(agents.values())


# -- the pack's content, as every episode recorded it ----------------------------------------

Fingerprint = tuple[str, str, str]  # scenario id, category, naming


def _episode_start(path: Path) -> tuple[Fingerprint, dict[str, str]] | None:
    """What an episode was shown before the agent's first turn: the tools, the system prompt
    and the task (hashed), keyed by scenario, category and naming; None when not recorded."""
    key: Fingerprint | None = None
    parts: dict[str, list[Any]] = {"tools": [], "system prompt": [], "task": []}
    try:
        with path.open("rb") as handle:
            for line in handle:
                try:
                    event = json.loads(line)
                except ValueError:
                    break
                kind = event.get("type")
                if kind == "episode_started":
                    key = (
                        str(event.get("scenario_id")),
                        str(event.get("category")),
                        str(event.get("naming")),
                    )
                    parts["tools"].append(event.get("tools"))
                elif kind == "message" and key is not None:
                    message = event.get("message") or {}
                    role = "system prompt" if message.get("role") == "system" else "task"
                    parts[role].append(message.get("content"))
                elif kind is not None and key is not None:
                    break
    except OSError:
        return None
    if key is None or not (parts["system prompt"] or parts["task"]):
        return None
    digest = {
        name: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
        for name, value in parts.items()
    }
    return key, digest


def check_same_content(sources: list[Path], episodes: list[list[str]]) -> None:
    """Raise :class:`MergeError` when episodes of one scenario, category and naming were shown
    a different system prompt, task or tools in two runs: the pack changed between them."""
    seen: dict[Fingerprint, tuple[Path, dict[str, str]]] = {}
    changed: dict[Fingerprint, str] = {}
    for source, ids in zip(sources, episodes, strict=True):
        store = RunStore(source)
        for episode_id in ids:
            start = _episode_start(store.trajectory_path(episode_id))
            if start is None:
                continue
            key, digest = start
            earlier = seen.setdefault(key, (source, digest))
            if earlier[0] != source and earlier[1] != digest and key not in changed:
                parts = [name for name in digest if digest[name] != earlier[1].get(name)]
                verb = "differ" if len(parts) > 1 else "differs"
                changed[key] = (
                    f"{key[0]} ({key[1]}, {key[2]}): {' and '.join(parts)} {verb} between "
                    f"{earlier[0]} and {source}"
                )
    if changed:
        shown = list(changed.values())[:EXAMPLES]
        more = f"\n  ... and {len(changed) - EXAMPLES} more" if len(changed) > EXAMPLES else ""
        raise MergeError(
            f"cannot merge: the pack's content differs between the runs in {len(changed)} "
            "scenario variant(s) (the pack was changed between them):\n  "
            + "\n  ".join(shown)
            + more
        )


# -- the pack itself, as every run recorded it ------------------------------------------------


def _pack_digests(manifest: Manifest) -> dict[str, str]:
    """sha256 → path of every pack the run recorded reading (a merged run may list one pack at
    several paths); empty for a run recorded before input files were."""
    return {f.sha256: f.path for f in manifest.input_files if f.role == "pack" and f.sha256}


def _recorded_pack(manifest: Manifest) -> Pack | None:
    """The pack as the run read it, where its files are still on disk unchanged."""
    for digest, path in _pack_digests(manifest).items():
        if path_sha256(Path(path))[0] == digest:
            try:
                return load_pack(path, parameters_of=default_registry.parameters_of)
            except ScenarioLoadError:
                continue
    return None


def _pack_changes(first: Pack, other: Pack) -> list[str]:
    """What differs between two packs' scenarios and code tasks (empty: the same content)."""

    def items(pack: Pack) -> dict[str, Any]:
        found: dict[str, Any] = {s.id: s.model_dump(mode="json") for s in pack.scenarios}
        found.update({t.id: t.model_dump(mode="json") for t in pack.code_tasks})
        return found

    mine, theirs = items(first), items(other)
    changes: list[str] = []
    for label, ids in (
        ("only in the first", [i for i in mine if i not in theirs]),
        ("only in the other", [i for i in theirs if i not in mine]),
        ("with a different content", [i for i in mine if i in theirs and mine[i] != theirs[i]]),
    ):
        if ids:
            changes.append(f"scenarios {label}: {', '.join(ids)}")
    common = [i for i in mine if i in theirs]
    if not changes and common != [i for i in theirs if i in mine]:
        changes.append("the scenarios are in another order (--limit picks others)")
    return changes


def _scenarios_run(source: Path, episodes: list[str]) -> list[str]:
    """The scenarios of the episodes a run recorded (from their trajectories)."""
    store = RunStore(source)
    found: dict[str, None] = {}
    for episode_id in episodes:
        start = _episode_start(store.trajectory_path(episode_id))
        if start is not None:
            found.setdefault(start[0][0])
    return sorted(found)


def check_same_pack(
    sources: list[Path],
    manifests: list[Manifest],
    episodes: list[list[str]],
    log: Callable[[str], None] = lambda _: None,
) -> None:
    """Raise :class:`MergeError` when the runs read packs of different content (their recorded
    sha256 differ), naming what differs: the scenarios of each pack where the packs as recorded
    are still on disk, else the scenarios each run's episodes hold. Packs whose files differ but
    whose scenarios are the same (checked on both packs as recorded) only get a note; the same
    pack at another path is the same pack."""
    first = _pack_digests(manifests[0])
    problems: list[str] = []
    for index in range(1, len(sources)):
        other = _pack_digests(manifests[index])
        if not first or not other or set(first) == set(other):
            continue
        source = sources[index]
        lines = [
            f"pack {', '.join(first.values())} (sha256 {', '.join(d[:12] for d in first)}) in "
            f"{sources[0]}, {', '.join(other.values())} (sha256 "
            f"{', '.join(d[:12] for d in other)}) in {source}"
        ]
        packs = _recorded_pack(manifests[0]), _recorded_pack(manifests[index])
        if packs[0] is not None and packs[1] is not None:
            changes = _pack_changes(packs[0], packs[1])
            if not changes:
                log(
                    f"note: the pack's files differ between {sources[0]} and {source}, but not "
                    "its scenarios"
                )
                continue
            lines += [
                change.replace("the first", str(sources[0])).replace("the other", str(source))
                for change in changes
            ]
        else:
            mine = ", ".join(_scenarios_run(sources[0], episodes[0])) or "(none)"
            theirs = ", ".join(_scenarios_run(source, episodes[index])) or "(none)"
            lines.append(
                "the packs as the runs read them are no longer both on disk to compare; the "
                f"runs' episodes are of the scenarios {mine} in {sources[0]}, {theirs} in {source}"
            )
        problems.append("\n  ".join(lines))
    if problems:
        raise MergeError(
            "cannot merge: the runs read different packs (their scenario set or content "
            "differ), so their agents would be scored on different scenarios:\n  "
            + "\n  ".join(problems)
            + "\nMerge runs of one pack; the same pack at another path is fine."
        )


# -- the episodes the merged run must hold ----------------------------------------------------


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


# -- merging ---------------------------------------------------------------------------------


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
        MergeSource(
            path=str(source.resolve()),
            run_id=manifest.run_id,
            config=manifest.config,
            config_hash=manifest.config_hash,
            pack=manifest.pack,
            pack_path=manifest.pack_path,
            episodes_total=manifest.episodes_total,
            started_at=manifest.started_at,
            finished_at=manifest.finished_at,
            git_revision=manifest.git_revision,
            packages=manifest.packages,
            merged_from=manifest.merged_from,
            episodes=ids,
            sources=merge_sources(manifest),
        ).model_dump(mode="json")
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
