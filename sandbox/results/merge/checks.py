"""The rule of a merge (see :mod:`sandbox.results.merge`): which settings may differ between
the runs merged (:func:`check_mergeable`), and that they read one pack, as every episode
recorded it (:func:`check_same_content`) and as every run recorded reading it
(:func:`check_same_pack`). Each check raises :class:`MergeError` naming every problem found.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sandbox.plugins import path_sha256
from sandbox.results.merge.records import MergeError
from sandbox.results.store import Manifest, RunStore
from sandbox.runtime.config import RunConfig
from sandbox.runtime.kinds.base import BUILTIN_KINDS
from scenarios.loader import ScenarioLoadError, load_pack
from scenarios.model import Pack
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
# How many examples a refusal names (all are counted).
EXAMPLES = 5
_VALUE_CHARS = 300


class _NotSet:
    """A setting one run has and the other lacks (shown as ``(not set)``)."""

    def __repr__(self) -> str:
        return "(not set)"


_NOT_SET = _NotSet()


class Difference(BaseModel):
    """One setting (dotted path into ``RunConfig``) whose value differs between two runs."""

    path: str
    first: Any
    other: Any

    def render(self, first_name: str, other_name: str) -> str:
        return (
            f"{self.path}: {_show(self.first)} in {first_name}, {_show(self.other)} in {other_name}"
        )


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
    """Whether this difference makes two runs impossible to merge into one (see the package)."""
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
    agent whose runs do not hold the same agents (see the package docstring for the rule).
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


# -- the pack's content, as every episode recorded it ----------------------------------------

Fingerprint = tuple[str, str, str]  # scenario id, category, naming


def _episode_start(path: Path) -> tuple[Fingerprint, dict[str, str]] | None:
    """What an episode was shown before the agent's first turn: the tools, the system prompt
    and the task (hashed), keyed by scenario, category and naming; None when not recorded, and
    for a plugin kind's episode (what it shows is the kind's own doing, not the pack's)."""
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
                    if event.get("kind") not in (None, *BUILTIN_KINDS):
                        # A plugin kind may show each agent or seed its own prompt: what
                        # it shows is its own, not the pack's, and is not compared.
                        return None
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
