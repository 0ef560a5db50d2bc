"""What a merged run's manifest keeps of its merge: one :class:`MergeSource` per source run
(under ``merge_sources``), the episodes no source finished (:class:`MissingPart`, under
``missing_at_merge``), and the readers of both. See :mod:`sandbox.results.merge` for the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sandbox.results.store import Manifest
from sandbox.runtime.config import RunConfig

MERGE_SOURCES_KEY = "merge_sources"
MISSING_KEY = "missing_at_merge"


class MergeError(Exception):
    """The runs cannot be merged (a differing setting, a duplicate episode, a busy target)."""


class MergeSource(BaseModel):
    """One merged run, as the merged manifest keeps it (under ``merge_sources``).

    Every field but ``path``, ``episodes`` and ``sources`` is the source's manifest field of
    the same name and value (:meth:`of` takes them from the manifest by name); the manifest's
    other fields (``seeds``, ``python``, ``argv``, ``user_modules``, ...) are not kept per
    source."""

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

    @classmethod
    def of(cls, path: str, manifest: Manifest, episodes: list[str]) -> MergeSource:
        """The record of the run ``manifest`` describes, found at ``path``, from which the
        merged run took ``episodes``; for a merged run, its own recorded sources too."""
        shared: dict[str, Any] = {
            name: getattr(manifest, name) for name in cls.model_fields if name not in _OWN
        }
        return cls(path=path, episodes=episodes, sources=merge_sources(manifest), **shared)

    def leaves(self) -> list[MergeSource]:
        """The runs this source was made of: itself, or its sources' runs for a merged one."""
        return [leaf for s in self.sources for leaf in s.leaves()] if self.sources else [self]


# MergeSource's own fields; every other one is the manifest's (MergeSource.of).
_OWN = frozenset({"path", "episodes", "sources"})


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
