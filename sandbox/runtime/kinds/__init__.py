"""Kinds of episode: the ``EpisodeKind`` interface, its registry and the built-in kinds
(propensity scenarios, open scenarios, code tasks). See docs/adding-an-episode-kind.md."""

from sandbox.runtime.kinds.base import (
    BUILTIN_KINDS,
    ENTRY_POINT_GROUP,
    EpisodeKind,
    RunContext,
    kind_named,
    load_kind_entry_points,
    register_kind,
    registered_kinds,
    run_kinds,
)
from sandbox.runtime.kinds.code_task import CodeEpisodeRunner, CodeTaskKind
from sandbox.runtime.kinds.open import OpenEpisodeRunner, OpenKind, situation_of
from sandbox.runtime.kinds.propensity import EpisodeRunner, PropensityKind

__all__ = [
    "BUILTIN_KINDS",
    "ENTRY_POINT_GROUP",
    "CodeEpisodeRunner",
    "CodeTaskKind",
    "EpisodeKind",
    "EpisodeRunner",
    "OpenEpisodeRunner",
    "OpenKind",
    "PropensityKind",
    "RunContext",
    "kind_named",
    "load_kind_entry_points",
    "register_kind",
    "registered_kinds",
    "run_kinds",
    "situation_of",
]
