"""What a kind of episode is to the runtime: the ``EpisodeKind`` interface and its registry.

A kind (a propensity scenario, a code-interpreter task, an open ToolEmu-style scenario, or one
a plugin adds) is everything the orchestrator must not know about one kind of episode:

- ``episodes(config, pack)``: the episodes of this kind a suite expands to (a class method:
  merges and reports expand a run without starting anything);
- ``check()``: refuse the run before anything is written (raise :class:`RunError`);
- ``start(todo)`` / ``close()``: the shared services the kind's episodes need (an emulator, a
  judge, a sandbox pool), started once for the episodes about to run and closed at the end;
- ``runner(spec, writer)``: an async context manager giving the episode's
  :class:`~sandbox.runtime.turn_loop.TurnLoop` (for example inside a sandbox lease);
- ``score(spec, trajectory)``: the kind's scores for a finished (``done``) episode.

The orchestrator schedules, journals, times out, retries and records outcomes; a crash in a
kind's runner or scorer is recorded as an infrastructure error (``harness_error``,
``scoring_error``), never as behaviour. Kinds register themselves with :func:`register_kind`;
a plugin module (``--plugin``, ``PROPENSITY_PLUGINS`` or the ``propensity_sandbox.episode_kinds``
entry point group) registers its own the same way (docs/adding-an-episode-kind.md).
"""

from __future__ import annotations

import importlib.metadata
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from sandbox.agents.protocol import Agent
from sandbox.results.store import RunStore, TrajectoryWriter
from sandbox.runtime.config import EpisodeSpec, RunConfig
from sandbox.runtime.errors import RunError
from sandbox.runtime.services import RunServices
from sandbox.runtime.turn_loop import TurnLoop
from scenarios.model import Pack
from scenarios.records import Score, Trajectory
from tools import ToolRegistry

ENTRY_POINT_GROUP = "propensity_sandbox.episode_kinds"
# The kinds a run has when its configuration names none (``RunConfig.kinds`` is None).
BUILTIN_KINDS = ("scenario", "open", "code_task")


@dataclass
class RunContext:
    """What a kind gets from the run it is part of.

    ``pack`` is the whole pack (checks cover all of it, whatever ``--limit`` selects);
    ``agents`` are built before any kind starts, keyed by their label; ``services`` hold what
    kinds share (the response cache, the judge, local model servers)."""

    config: RunConfig
    pack: Pack
    store: RunStore
    registry: ToolRegistry
    services: RunServices
    agents: dict[str, Agent] = field(default_factory=dict)
    log: Callable[[str], None] = lambda _: None


class EpisodeKind(ABC):
    """One kind of episode, as the runtime runs it (see the module docstring).

    Subclasses set ``name`` (the ``EpisodeSpec.kind`` their episodes carry; unique) and
    implement ``episodes``, ``runner`` and ``score``; ``check``, ``start`` and ``close`` do
    nothing unless overridden. One instance serves one run (or one resume of it)."""

    name: ClassVar[str]

    def __init__(self, run: RunContext) -> None:
        self.run = run

    @property
    def options(self) -> dict[str, Any]:
        """This kind's settings from the run configuration (``--kind-option NAME.KEY=VALUE``;
        JSON values), ``{}`` when none were given. Validate them in :meth:`check`."""
        return dict(self.run.config.kind_options.get(self.name, {}))

    @classmethod
    @abstractmethod
    def episodes(cls, config: RunConfig, pack: Pack) -> list[EpisodeSpec]:
        """This kind's episodes in ``pack`` (already filtered by ``--scenario`` and ``--limit``),
        in a stable order; ids must be unique across kinds and stable across runs."""

    def check(self) -> None:
        """Refuse the run before anything is written; raises :class:`RunError`."""
        return None

    async def start(self, todo: Sequence[EpisodeSpec]) -> None:
        """Start what ``todo`` (this kind's episodes about to run; may be empty) needs.
        Raises :class:`RunError` when a service cannot start."""
        return None

    async def close(self) -> None:
        """Release what :meth:`start` started; called once, even after a failed start."""
        return None

    @abstractmethod
    def runner(
        self, spec: EpisodeSpec, writer: TrajectoryWriter
    ) -> AbstractAsyncContextManager[TurnLoop]:
        """The episode's turn loop, held open while it runs (``async with``)."""

    @abstractmethod
    async def score(self, spec: EpisodeSpec, trajectory: Trajectory) -> list[Score]:
        """Scores of a ``done`` episode (the orchestrator adds the protocol-health score)."""


K = TypeVar("K", bound=type[EpisodeKind])

_kinds: dict[str, type[EpisodeKind]] = {}
_loaded_entry_points: set[tuple[str, str]] = set()


def register_kind(kind: K) -> K:
    """Make ``kind`` available to runs (usable as a class decorator). Registering the same
    class again changes nothing; another class under a taken name raises ``ValueError``."""
    name = getattr(kind, "name", None)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        raise ValueError(
            f"{kind.__qualname__}: an episode kind needs a name of 1-64 ASCII letters, digits, "
            f"'_' or '-' (got {name!r})"
        )
    other = _kinds.get(name)
    if other is not None and other is not kind:
        raise ValueError(
            f"episode kind {name!r} is already registered by "
            f"{other.__module__}.{other.__qualname__}"
        )
    _kinds[name] = kind
    return kind


def registered_kinds() -> dict[str, type[EpisodeKind]]:
    """Every kind by name: built-ins, those of plugins imported, and those installed packages
    advertise (their entry points are loaded here; one that fails is left out)."""
    load_kind_entry_points()
    return dict(_kinds)


def kind_named(name: str) -> type[EpisodeKind]:
    """The registered kind ``name`` (installed entry points are loaded when it is not yet
    registered); ``LookupError`` naming the known ones otherwise."""
    problems = load_kind_entry_points() if name not in _kinds else []
    try:
        return _kinds[name]
    except KeyError:
        broken = f"; entry points that failed: {'; '.join(problems)}" if problems else ""
        raise LookupError(
            f"unknown episode kind {name!r} (known: {', '.join(sorted(_kinds))}; a kind from a "
            f"plugin needs --plugin MODULE or an installed entry point){broken}"
        ) from None


def run_kinds(config: RunConfig) -> list[type[EpisodeKind]]:
    """The kinds ``config`` runs, in its order: ``config.kinds``, or the built-in ones."""
    return [kind_named(name) for name in (config.kinds or BUILTIN_KINDS)]


def load_kind_entry_points(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Import the kinds installed packages advertise (each entry point names a module or a
    kind class); returns what failed, as text: one broken package must not stop a run."""
    try:
        found = importlib.metadata.entry_points(group=group)
    except Exception as exc:
        return [f"group {group!r}: cannot list entry points: {exc}"]
    problems: list[str] = []
    for entry_point in found:
        key = (entry_point.name, entry_point.value)
        if key in _loaded_entry_points:
            continue
        try:
            loaded = entry_point.load()
            if isinstance(loaded, type) and issubclass(loaded, EpisodeKind):
                register_kind(loaded)
        except Exception as exc:
            problems.append(
                f"{entry_point.name} = {entry_point.value}: {type(exc).__name__}: {exc}"
            )
            continue
        _loaded_entry_points.add(key)
    return problems


__all__ = [
    "BUILTIN_KINDS",
    "ENTRY_POINT_GROUP",
    "EpisodeKind",
    "RunContext",
    "RunError",
    "kind_named",
    "load_kind_entry_points",
    "register_kind",
    "registered_kinds",
    "run_kinds",
]
