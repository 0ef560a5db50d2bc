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
  episode of one scenario, category and naming must be the same in every run.
* **May differ** — the agents (the merged run has them all; an agent found in several runs must
  have the same settings there, and those runs must have the same agents: they are shards of
  one run), the shard, and how a run was executed rather than what it measured
  (:data:`EXECUTION_SETTINGS`: concurrency, sandbox pool, episode and call timeouts, retries,
  cache directory). The merged configuration takes those from the first run; each run's own
  configuration is kept in the merged manifest (``merge_sources``).
* **Never twice** — an episode id found in two runs is refused, never counted twice.

The merged manifest's ``merged_from`` lists the source directories; ``merge_sources`` holds one
:class:`MergeSource` per source (its configuration, versions and the episode ids taken from it),
so where every episode came from stays on record (see :func:`merge_sources`).
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
from sandbox.config import RunConfig
from sandbox.store import CorruptRecordError, Manifest, RunDirectoryBusy, RunLock, RunStore
from sandbox.summary import RunSummary, build_summary
from scenarios.records import EpisodeStatus, JournalEntry, Score

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


def merge_sources(manifest: Manifest) -> list[MergeSource]:
    """The sources recorded in a merged run's manifest (empty for a run that is no merge)."""
    extra = manifest.model_extra or {}
    return [MergeSource.model_validate(item) for item in extra.get(MERGE_SOURCES_KEY) or []]


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


def check_mergeable(sources: list[Path], configs: list[RunConfig], packs: list[str]) -> None:
    """Raise :class:`MergeError` listing every setting that must be equal and is not, and every
    agent whose runs do not hold the same agents (see the module docstring for the rule)."""
    problems: list[str] = []
    first, first_config = sources[0], configs[0]
    for source, config, pack in zip(sources[1:], configs[1:], packs[1:], strict=True):
        lines = [
            d.render(str(first), str(source))
            for d in config_differences(first_config, config)
            if blocking(d)
        ]
        if pack != packs[0]:
            lines.insert(0, f"pack: {pack!r} in {source}, {packs[0]!r} in {first}")
        if lines:
            problems.append(
                f"{source} was run with a different configuration than {first}:\n  "
                + "\n  ".join(lines)
            )
    agent_sets: dict[str, tuple[Path, list[str]]] = {}
    for source, config in zip(sources, configs, strict=True):
        labels = [agent.label for agent in config.agents]
        for label in labels:
            seen = agent_sets.setdefault(label, (source, labels))
            if sorted(seen[1]) != sorted(labels):
                problems.append(
                    f"agent {label!r} is in {seen[0]} (agents: {', '.join(seen[1])}) and in "
                    f"{source} (agents: {', '.join(labels)}): runs that share an agent must be "
                    "shards of one run, with the same agents"
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


# -- merging ---------------------------------------------------------------------------------


def merge_runs(
    sources: list[Path], out: Path, *, log: Callable[[str], None] = lambda _: None
) -> RunSummary:
    """Combine shards of one run, or runs of one suite with different agents, into ``out``.

    Refuses (:class:`MergeError`) runs whose settings differ where they must be equal (each
    such setting named with its value in each run), a pack whose content changed between the
    runs, and an episode found in more than one run. ``log`` receives notes that do not stop
    the merge (runs made by different harness versions).
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
    check_mergeable(sources, [m.config for m in manifests], [m.pack for m in manifests])
    resolved = [source.resolve() for source in sources]
    for index, source in enumerate(sources):
        if resolved[index] in resolved[:index]:
            raise MergeError(f"{source} is given twice: each run can be merged once only")
    owner: dict[str, Path] = {}
    duplicates: dict[tuple[Path, Path], list[str]] = {}
    finals: list[JournalEntry] = []
    scores: list[Score] = []
    taken: list[list[str]] = []
    for source, store in zip(sources, stores, strict=True):
        try:
            states = store.latest_states()
            source_scores = store.read_scores()
        except CorruptRecordError as exc:
            raise MergeError(str(exc)) from None
        ids: list[str] = []
        for episode_id, entry in states.items():
            if episode_id in owner:
                duplicates.setdefault((owner[episode_id], source), []).append(episode_id)
                continue
            owner[episode_id] = source
            ids.append(episode_id)
            finals.append(entry)
        taken.append(ids)
        done = {e for e, s in states.items() if s.status is EpisodeStatus.DONE}
        scores.extend(s for s in source_scores if s.episode_id in done)
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
    check_same_content(sources, taken)
    _note_versions(sources, manifests, log)

    try:
        lock = RunLock(out).acquire()
    except RunDirectoryBusy as exc:
        raise MergeError(str(exc)) from None
    try:
        if (out / "manifest.json").exists():  # another writer got there first
            raise MergeError(f"{out} already holds a run")
        return _write(out, sources, owner, manifests, taken, finals, scores)
    finally:
        lock.release()


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
    owner: dict[str, Path],
    manifests: list[Manifest],
    taken: list[list[str]],
    finals: list[JournalEntry],
    scores: list[Score],
) -> RunSummary:
    first = manifests[0]
    try:
        config = RunConfig.model_validate(
            {
                **first.config.model_dump(),
                "shard": None,
                "agents": _union_agents(m.config for m in manifests),
            }
        )
    except ValidationError as exc:
        raise MergeError(f"the merged configuration is not valid: {exc}") from None
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
        ).model_dump(mode="json")
        for source, manifest, ids in zip(sources, manifests, taken, strict=True)
    ]
    target = RunStore(out)
    target.init()
    for episode_id, source in owner.items():
        path = RunStore(source).trajectory_path(episode_id)
        if path.exists():
            shutil.copy2(path, target.trajectory_path(episode_id))
    shards = sorted(str(m.config.shard) for m in manifests if m.config.shard is not None)
    merged = first.model_copy(
        update={
            "run_id": out.name,
            "config": config,
            "config_hash": config.identity_hash(),
            "episodes_total": sum(m.episodes_total for m in manifests),
            "merged_from": [str(s.resolve()) for s in sources],
            # Every source's user code and input files (the union, first seen first), so resume
            # and replay of the merged run load the plugins and agents of every source.
            "user_modules": _union(m.user_modules for m in manifests),
            "input_files": _union(m.input_files for m in manifests),
            "started_at": min(m.started_at for m in manifests),
            "finished_at": time.time(),
            "shards": shards,
            MERGE_SOURCES_KEY: records,
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
