"""The run directory: the stable, append-only on-disk contract that people and tools read.

Writes are line-oriented JSONL appended and flushed as they happen, so a process killed at any
moment leaves at most one torn final line per file, which readers skip. Nothing is rewritten in
place except when a resume drops records of episodes it is about to run again.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from sandbox.results.redaction import Redactor
from sandbox.run_inputs import InputFile, UserModule
from sandbox.runtime.config import RunConfig, agent_slug
from scenarios.records import (
    EPISODE_ID_PATTERN,
    EpisodeStartedEvent,
    EpisodeStatus,
    Event,
    JournalEntry,
    Score,
    Trajectory,
)

MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"
TRAJECTORIES = "trajectories"
SCORES = "scores.jsonl"
SUMMARY = "summary.json"
FORMAT_VERSION = 1

M = TypeVar("M", bound=BaseModel)
_EPISODE_ID = re.compile(EPISODE_ID_PATTERN)
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class CorruptRecordError(ValueError):
    pass


class RunDirectoryBusy(RuntimeError):
    """Another process holds the run directory's lock (a run, a resume or a merge into it)."""


LOCK = ".lock"


class RunLock:
    """An exclusive lock on a run directory for the life of one writer (``flock`` on
    ``RUN_DIR/.lock``, released by the kernel if the process dies). A second writer is refused
    with ``RunDirectoryBusy`` naming the holder's pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirectoryBusy(
                f"{self.root} is in use by another process (pid {holder}): wait for it to "
                "finish, or stop it, before writing to this run directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    @staticmethod
    def holder(root: Path) -> str | None:
        """The pid holding ``root``'s lock, or None when nobody does (a probe; takes nothing)."""
        path = root / LOCK
        if not path.is_file():
            return None
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def open_append(path: Path, log: Callable[[str], None] = lambda _: None) -> IO[str]:
    """Open an append-only record for appending, first cutting a torn last line (a write cut
    by a kill), so the next record never glues onto the fragment; says so through ``log``."""
    if path.exists():
        with path.open("rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(max(0, size - 1))
                if handle.read(1) != b"\n":
                    start = max(0, size - (1 << 20))
                    handle.seek(start)
                    tail = handle.read()
                    cut = start + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
                    handle.truncate(cut)
                    log(f"cut a torn last line of {size - cut} bytes from {path}")
    return path.open("a", encoding="utf-8")


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    format_version: int = FORMAT_VERSION
    run_id: str
    config: RunConfig
    config_hash: str
    pack: str
    pack_path: str
    episodes_total: int
    seeds: dict[str, int] = Field(default_factory=dict)
    packages: dict[str, str] = Field(default_factory=dict)
    git_revision: str | None = None
    python: str = ""
    platform: str = ""
    argv: list[str] = Field(default_factory=list)
    started_at: float = Field(default_factory=time.time)
    finished_at: float | None = None
    resumed_at: list[float] = Field(default_factory=list)
    merged_from: list[str] = Field(default_factory=list)
    # A branched replay's origin (source run, episode, step); see sandbox/replay/branch.py.
    branch: dict[str, Any] | None = None
    # Episodes that switched tool-calling protocol (native → text), each also a `protocol`
    # event in its trajectory: [{"episode_id", "agent", "from", "to", "reason"}].
    protocol_switches: list[dict[str, Any]] = Field(default_factory=list)
    # Run inputs beyond the config (see sandbox/plugins/): the user code the run imported
    # (plugins, toolkit modules, Python agents; imported again by --resume, replay, report and
    # merge), the files it read with their sha256, and the response cache it used. Runs
    # recorded before these fields existed load with them empty.
    user_modules: list[UserModule] = Field(default_factory=list)
    input_files: list[InputFile] = Field(default_factory=list)
    cache_dir: str | None = None


def read_jsonl(path: Path, model: type[M]) -> list[M]:
    return list(iter_jsonl(path, model))


def iter_jsonl(path: Path, model: type[M]) -> Iterator[M]:
    """Records of a JSONL file; a torn last line (a write cut by a kill) is skipped."""
    if not path.exists():
        return
    with path.open("rb") as handle:
        lines = handle.read().split(b"\n")
    last = len(lines) - 1
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield model.model_validate_json(line)
        except ValidationError as exc:
            if number == last:  # no trailing newline: the write was interrupted
                return
            raise CorruptRecordError(f"{path}:{number + 1}: {exc}") from None


class TrajectoryWriter:
    """Appends one episode's events as they happen; the in-memory copy feeds the evaluators.

    Events are handed to the OS at `flush()`, which the episode loop calls before every wait on
    the agent: a flush per event cost more CPU than litellm itself at hundreds of calls per
    second, and a killed episode is re-run from scratch on resume anyway.
    """

    def __init__(self, path: Path, episode_id: str, redact: Redactor) -> None:
        self.path = path
        self.trajectory = Trajectory(episode_id=episode_id)
        self._redact = redact
        self._handle: IO[str] | None = path.open("w", encoding="utf-8")
        self._seq = 0

    def write(self, event: Any) -> None:
        event.seq = self._seq
        self._seq += 1
        self.trajectory.events.append(event)
        if self._handle is not None:
            self._handle.write(self._redact(event.model_dump_json()) + "\n")

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def missing_scores(entry: JournalEntry, held: Collection[str]) -> list[str] | None:
    """What a done episode with scores from the evaluators ``held`` lacks: None when nothing
    (every evaluator its journal entry names, or, naming none, at least one score), else the
    evaluators missing, sorted (empty: every score is missing, which ones is unknown)."""
    if entry.evaluators:
        missing = sorted(set(entry.evaluators) - set(held))
        return missing or None
    return None if held else []


def describe_missing(missing: list[str]) -> str:
    """``missing_scores`` in words: the evaluators' names, or "every score"."""
    return ", ".join(missing) if missing else "every score"


class RunStore:
    def __init__(
        self,
        root: Path | str,
        redactor: Redactor | None = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.root = Path(root)
        self.redact = redactor or Redactor()
        self.log = log
        self._journal: IO[str] | None = None
        self._scores: IO[str] | None = None
        self._labels: list[str] | None = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def journal_path(self) -> Path:
        return self.root / JOURNAL

    @property
    def scores_path(self) -> Path:
        return self.root / SCORES

    @property
    def summary_path(self) -> Path:
        return self.root / SUMMARY

    @property
    def trajectories_dir(self) -> Path:
        return self.root / TRAJECTORIES

    def trajectory_path(self, episode_id: str) -> Path:
        """RUN_DIR/trajectories/EPISODE.jsonl; raises ``CorruptRecordError`` for an id that is
        not a plain file name (a crafted journal must not lead outside the directory)."""
        if not _EPISODE_ID.fullmatch(episode_id):
            raise CorruptRecordError(f"{self.root}: episode id {episode_id[:80]!r} is not valid")
        return self.trajectories_dir / f"{episode_id}.jsonl"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    # -- manifest ----------------------------------------------------------------------------
    def init(self) -> None:
        self.trajectories_dir.mkdir(parents=True, exist_ok=True)

    def write_manifest(self, manifest: Manifest) -> None:
        text = self.redact(manifest.model_dump_json(indent=2))
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    def read_manifest(self) -> Manifest:
        try:
            return Manifest.model_validate_json(self.manifest_path.read_bytes())
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.root} is not a run directory (no {MANIFEST})") from None
        except ValidationError as exc:
            raise CorruptRecordError(f"{self.manifest_path}: {exc}") from None

    # -- journal -----------------------------------------------------------------------------
    def _append(self, handle: IO[str], record: BaseModel) -> None:
        handle.write(self.redact(record.model_dump_json()) + "\n")
        handle.flush()

    def repair_tails(self) -> None:
        """Cut torn last lines of the run's append-only records now (before a resume reads
        and rewrites them), saying so through the store's log."""
        for path in (self.journal_path, self.scores_path):
            if path.exists():
                open_append(path, self.log).close()

    def journal(self, entry: JournalEntry) -> None:
        if self._journal is None:
            self._journal = open_append(self.journal_path, self.log)
        self._append(self._journal, entry)

    def journal_many(self, entries: list[JournalEntry]) -> None:
        if self._journal is None:
            self._journal = open_append(self.journal_path, self.log)
        self._journal.write("".join(e.model_dump_json() + "\n" for e in entries))
        self._journal.flush()

    def read_journal(self) -> list[JournalEntry]:
        return read_jsonl(self.journal_path, JournalEntry)

    def latest_states(self) -> dict[str, JournalEntry]:
        latest: dict[str, JournalEntry] = {}
        for entry in self.read_journal():
            latest[entry.episode_id] = entry
        return latest

    # -- trajectories ------------------------------------------------------------------------
    def open_trajectory(self, episode_id: str) -> TrajectoryWriter:
        return TrajectoryWriter(self.trajectory_path(episode_id), episode_id, self.redact)

    def append_events(self, episode_id: str, events: list[Any]) -> None:
        """Events that come after the episode (judges' verdicts), numbered after the last one."""
        path = self.trajectory_path(episode_id)
        start = len(self.read_trajectory(episode_id).events)
        with open_append(path, self.log) as handle:
            for offset, event in enumerate(events):
                event.seq = start + offset
                handle.write(self.redact(event.model_dump_json()) + "\n")

    def trajectory_complete(self, episode_id: str) -> bool:
        """Whether the episode's trajectory is whole: present, every line valid, holding its
        end event (a trajectory cut by a kill or a full disk is not, whatever the journal
        says), and recording this episode (another episode's trajectory filed under its id is
        not: see ``read_trajectory``). Looks at the file's tail first, so checking a large run
        stays cheap."""
        path = self.trajectory_path(episode_id)
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - 65536))
                tail = handle.read()
        except OSError:
            return False
        if not tail.endswith(b"\n") or b'"type":"episode_ended"' not in tail:
            return False
        try:
            return self.read_trajectory(episode_id).ended is not None
        except (OSError, CorruptRecordError):
            return False

    def read_trajectory(self, episode_id: str) -> Trajectory:
        path = self.trajectory_path(episode_id)
        events = []
        with path.open("rb") as handle:
            lines = handle.read().split(b"\n")
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                events.append(_EVENT_ADAPTER.validate_json(line))
            except ValidationError as exc:
                if number == len(lines) - 1:
                    break
                raise CorruptRecordError(f"{path}:{number + 1}: {exc}") from None
        self.check_identity(path, episode_id, events)
        return Trajectory(episode_id=episode_id, events=events)

    def check_identity(self, path: Path, episode_id: str, events: list[Event]) -> None:
        """Raise ``CorruptRecordError`` when the trajectory filed as ``episode_id`` records
        another episode (another episode's file copied over it): its ``episode_started`` event
        names another episode id, or another agent than the one its id names (among the
        manifest's agents; an id that names none of them is not checked for the agent)."""
        starts = [e for e in events if isinstance(e, EpisodeStartedEvent)]
        if not starts:
            return
        started = starts[0]
        where = f"{path}: episode_started (seq {started.seq})"
        if len(starts) > 1:  # another trajectory grafted onto this one
            raise CorruptRecordError(
                f"{path}: episode_started (seq {starts[1].seq}): a second start in one "
                f"trajectory ({len(starts)} in all; another episode's events appended?)"
            )
        if started.episode_id != episode_id:
            raise CorruptRecordError(
                f"{where}: episode_id is {started.episode_id[:200]!r}, not {episode_id!r}, the "
                "episode this file is filed under (another episode's trajectory?)"
            )
        dotted = f".{episode_id}."
        named = [a for a in self._agent_labels() if f".{agent_slug(a)}." in dotted]
        if named and f".{agent_slug(started.agent)}." not in dotted:
            raise CorruptRecordError(
                f"{where}: agent is {started.agent[:200]!r}, but episode {episode_id!r} is "
                f"{' or '.join(repr(a) for a in named)}'s (another agent's trajectory?)"
            )

    def _agent_labels(self) -> list[str]:
        """The manifest's agent labels, read once ([] when it cannot be read: its own readers
        say why)."""
        if self._labels is None:
            try:
                self._labels = [a.label for a in self.read_manifest().config.agents]
            except (OSError, ValueError):
                self._labels = []
        return self._labels

    # -- scores ------------------------------------------------------------------------------
    def append_scores(self, scores: list[Score]) -> None:
        if self._scores is None:
            self._scores = open_append(self.scores_path, self.log)
        self._scores.write("".join(self.redact(s.model_dump_json()) + "\n" for s in scores))
        self._scores.flush()

    def read_scores(self) -> list[Score]:
        return read_jsonl(self.scores_path, Score)

    def scored_episodes(self) -> set[str]:
        """Episodes with at least one score line (every finished episode has one: its
        protocol-health score); a "done" episode missing here lost its scores."""
        return {score.episode_id for score in self.read_scores()}

    def unscored(self, states: dict[str, JournalEntry]) -> dict[str, list[str]]:
        """The done episodes of ``states`` whose scores are not all in scores.jsonl, each with
        the evaluators it lacks: those its journal entry names (``evaluators``) that hold no
        line of it. An entry naming none (a journal written before they were recorded) needs
        at least one score; lacking every one, its list is empty (which ones is unknown)."""
        done = {eid for eid, e in states.items() if e.status is EpisodeStatus.DONE}
        if not done:
            return {}
        held: dict[str, set[str]] = {}
        for score in self.read_scores():
            if score.episode_id in done:
                held.setdefault(score.episode_id, set()).add(score.evaluator)
        return {
            eid: missing
            for eid in sorted(done)
            if (missing := missing_scores(states[eid], held.get(eid, set()))) is not None
        }

    def keep_scores_of(self, episode_ids: set[str]) -> None:
        """Drop score lines of episodes that are about to be re-run, and duplicates."""
        kept: dict[tuple[str, str], Score] = {}
        for score in self.read_scores():
            if score.episode_id in episode_ids:
                kept[(score.episode_id, score.evaluator)] = score
        tmp = self.scores_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(s.model_dump_json() + "\n" for s in kept.values()), "utf-8")
        os.replace(tmp, self.scores_path)

    # -- summary -----------------------------------------------------------------------------
    def write_json(self, name: str, data: Any) -> Path:
        path = self.root / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def close(self) -> None:
        for handle in (self._journal, self._scores):
            if handle is not None:
                handle.close()
        self._journal = self._scores = None
