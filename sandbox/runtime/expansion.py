"""A suite's episodes: the pack's items selected (``--scenario``, ``--limit``), each kind's
episodes of them in pack order, then the run's shard.

The same configuration and pack always give the same list, in the same order: the order decides
which shard runs an episode, so it is the pack's (a scenario's episodes where the scenario is in
the pack, whatever its kind; code tasks after scenarios; a plugin kind's episodes after the
built-in ones of the same item).
"""

from __future__ import annotations

import re
from collections import Counter

from sandbox.runtime.config import EpisodeSpec, RunConfig
from sandbox.runtime.kinds.base import run_kinds
from scenarios.model import Pack
from scenarios.records import EPISODE_ID_PATTERN


def selected_items(config: RunConfig, pack: Pack) -> Pack:
    """``pack`` with only the scenarios and code tasks the run selects: ``config.scenario_ids``
    (an unknown id raises ``ValueError``), then the first ``config.limit`` of each list."""
    scenarios = pack.scenarios
    code_tasks = pack.code_tasks
    if config.scenario_ids:
        wanted = set(config.scenario_ids)
        missing = wanted - {s.id for s in scenarios} - {t.id for t in code_tasks}
        if missing:
            raise ValueError(f"unknown scenario ids in pack {pack.name!r}: {sorted(missing)}")
        scenarios = [s for s in scenarios if s.id in wanted]
        code_tasks = [t for t in code_tasks if t.id in wanted]
    if config.limit is not None:
        scenarios = scenarios[: config.limit]
        code_tasks = code_tasks[: config.limit]
    return pack.model_copy(update={"scenarios": scenarios, "code_tasks": code_tasks})


def _check_spec(kind: str, spec: object) -> None:
    """A kind's episode, refused (``ValueError``) unless it is an ``EpisodeSpec`` of this kind
    whose id names a file: the run directory holds a trajectory per id."""
    if not isinstance(spec, EpisodeSpec):
        raise ValueError(f"kind {kind!r} listed a {type(spec).__name__}, not an EpisodeSpec")
    if spec.kind != kind:
        raise ValueError(f"kind {kind!r} listed episode {spec.id!r} of kind {spec.kind!r}")
    if not re.fullmatch(EPISODE_ID_PATTERN, spec.id):
        raise ValueError(
            f"kind {kind!r} listed episode id {spec.id[:80]!r}: ids are 1-200 letters, digits, "
            "'_', '.' and '-', starting with a letter or digit"
        )


def expand_episodes(config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
    """The suite's episodes in a stable order (see the module docstring).

    Raises ``ValueError`` for an unknown scenario id, ``LookupError`` for an unknown kind in
    ``config.kinds`` and ``ValueError`` when two kinds give episodes the same id."""
    items = selected_items(config, pack)
    position = {s.id: k for k, s in enumerate(items.scenarios)}
    position.update({t.id: len(position) + k for k, t in enumerate(items.code_tasks)})
    episodes: list[EpisodeSpec] = []
    for kind in run_kinds(config):
        try:
            given = kind.episodes(config, items)
        except Exception as exc:  # a kind's bug: refused before anything is written
            raise ValueError(
                f"kind {kind.name!r} could not list its episodes: {type(exc).__name__}: {exc}"
            ) from exc
        for spec in given:
            _check_spec(kind.name, spec)
        episodes.extend(given)
    # A stable sort: each item's episodes keep their kind's order; items keep the pack's.
    episodes.sort(key=lambda spec: position.get(spec.scenario_id, len(position)))
    counts = Counter(spec.id for spec in episodes)
    repeated = sorted({f"{spec.id} ({spec.kind})" for spec in episodes if counts[spec.id] > 1})
    if repeated:
        raise ValueError(f"episode ids given by more than one episode: {repeated[:6]}")
    if config.shard is not None:
        shard = config.shard
        episodes = [e for k, e in enumerate(episodes) if k % shard.count == shard.index - 1]
    return episodes
