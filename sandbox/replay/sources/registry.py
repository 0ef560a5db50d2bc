"""Which reader reads a recorded input: the registry of source formats and the dispatch over it.

Each source format registers a :class:`Reader` (its :class:`SourceFormat`, a cheap
``detect(path) -> bool`` and ``read(path) -> LoadResult``); a format whose files have companion
files that are not sources of their own (ToolEmu's label files) registers a :class:`Companion`,
refused when given alone and skipped when a directory is read. :func:`detect_format` asks the
entries in the order they were registered and the first claim wins; a path nobody claims is
explained (missing, empty, not JSON lines, an unknown record). :func:`read_source` reads a path
with its reader, and a directory no reader claims file by file. Adding a format (Inspect AI
logs are one) is one more :func:`register_reader` call in :mod:`sandbox.replay.sources`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.replay.sources.common import (
    LoadResult,
    Recorded,
    ReplaySourceError,
    SourceFormat,
    first_object,
    first_record,
)
from sandbox.results.store import JOURNAL, MANIFEST, SUMMARY, TRAJECTORIES

__all__ = [
    "Companion",
    "Reader",
    "check_unique",
    "detect_format",
    "load_recorded",
    "read_source",
    "read_sources",
    "readers",
    "register_companion",
    "register_reader",
]


@dataclass(frozen=True)
class Reader:
    """How one source format is recognised and read."""

    format: SourceFormat
    # Cheap: looks at the path and at most the first record, and never raises for another format.
    detect: Callable[[Path], bool]
    read: Callable[[Path], LoadResult]
    # What the format's records look like, for the error on a record no reader claims ("" for
    # formats that are not JSON lines).
    expects: str = ""
    # Suffixes of its files besides ``.jsonl``, for reading a directory (e.g. ``.eval``).
    suffixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Companion:
    """Files that belong to another source's files (joined when those are read), recognised by
    their first record: refused with ``problem`` when given alone, skipped in a directory."""

    check: Callable[[Any], bool]
    problem: str


_ENTRIES: list[Reader | Companion] = []


def register_reader(reader: Reader) -> None:
    """Add a format; it is tried after every entry registered before it."""
    if any(r.format is reader.format for r in readers()):
        raise ValueError(f"a reader for {reader.format.value!r} is already registered")
    _ENTRIES.append(reader)


def register_companion(companion: Companion) -> None:
    """Add a kind of companion file; it is checked after every entry registered before it."""
    _ENTRIES.append(companion)


def readers() -> tuple[Reader, ...]:
    """The registered readers, in detection order."""
    return tuple(e for e in _ENTRIES if isinstance(e, Reader))


def _companions() -> tuple[Companion, ...]:
    return tuple(e for e in _ENTRIES if isinstance(e, Companion))


def _or_list(items: list[str]) -> str:
    if len(items) <= 2:
        return " or ".join(items)
    return ", ".join(items[:-1]) + ", or " + items[-1]


# What the files a run writes beside its records are, when one is given as a source.
_RUN_FILES = {
    MANIFEST: "a run's manifest (its configuration), not recorded episodes",
    SUMMARY: "a run's summary (what propensity report shows), not recorded episodes",
}


def _run_file(path: Path) -> str | None:
    """What a run's own file (manifest, summary) given as a source is, None for other files."""
    what = _RUN_FILES.get(path.name)
    if what is None:
        return None
    return f"{what}: give the run directory ({path.parent}) instead"


def _unclaimed(path: Path) -> ReplaySourceError:
    """Why no reader claims ``path``."""
    if path.is_dir():
        return ReplaySourceError(path, None, f"a directory but not a run directory (no {MANIFEST})")
    if not path.is_file():
        return ReplaySourceError(path, None, "no such file or directory")
    run_file = _run_file(path)
    if run_file is not None:
        return ReplaySourceError(path, None, run_file)
    try:
        first = first_record(path)  # raises for a first line that is not JSON
    except ReplaySourceError:
        if path.suffix.lower() == ".json":
            return ReplaySourceError(
                path,
                None,
                "a .json file that is neither an Inspect log (its first keys would be version, "
                "status and eval) nor JSON lines",
            )
        raise
    if first is None:
        return ReplaySourceError(path, None, "empty file: no records")
    number, record = first
    if not isinstance(record, dict):
        return ReplaySourceError(path, number, "expected a JSON object per line")
    # Our own trajectory events are named first, then the other formats as registered.
    listed = sorted(readers(), key=lambda r: r.format is not SourceFormat.TRAJECTORY)
    expected = _or_list([r.expects for r in listed if r.expects])
    keys = ", ".join(sorted(record)[:8])
    return ReplaySourceError(
        path, number, f"unrecognised record (expected {expected}); keys: {keys}"
    )


def detect_format(path: Path | str) -> SourceFormat:
    """The format of a path: a run directory, or a JSONL file recognised by its first record."""
    path = Path(path)
    for entry in _ENTRIES:
        if isinstance(entry, Reader):
            if entry.detect(path):
                return entry.format
            continue
        first = first_object(path)
        if first is not None and entry.check(first[1]):
            raise ReplaySourceError(path, first[0], entry.problem)
    raise _unclaimed(path)


def _reader(fmt: SourceFormat) -> Reader:
    for reader in readers():
        if reader.format is fmt:
            return reader
    raise ValueError(f"no reader registered for source format {fmt!r}")


def _place(record: Recorded) -> str:
    """Where a record came from: its file and line, or its file and sample (Inspect)."""
    if record.source_line is not None:
        return f"{record.source_file}:{record.source_line}"
    inspect = record.meta.get("inspect")
    if isinstance(inspect, dict) and "sample_id" in inspect:
        return f"{record.source_file}:{inspect['sample_id']}@{inspect.get('epoch')}"
    return record.source_file


# Event fields that say where a record was read, not what happened: the episode id (the only
# event field that carries it: the started event's) and the event's position.
_PLACE_FIELDS = frozenset({"episode_id", "seq"})
# Started-event fields a format derives from the file's name or the line's position rather
# than its content (ToolEmu: the agent from the dump's file name, a case without a name from
# its position), so a copy under another name, or a line given twice, still matches.
_NAMED_BY_FILE: dict[SourceFormat, frozenset[str]] = {
    SourceFormat.TOOLEMU: frozenset({"agent", "scenario_id"})
}


def _fingerprint(record: Recorded) -> str:
    """A digest of what a record holds, not of where it was read: its kind and its events
    without the fields that name its place (and, for an Inspect sample, its sample id and
    epoch, so two samples that happen to read alike stay two)."""
    hashed = hashlib.sha256(record.kind.encode())
    inspect = record.meta.get("inspect")
    if isinstance(inspect, dict):
        sample = [inspect.get(k) for k in ("eval_id", "sample_id", "epoch")]
        hashed.update(json.dumps(sample, default=str).encode())
    named = _NAMED_BY_FILE.get(record.source_format, frozenset())
    for event in record.trajectory.events:
        drop = _PLACE_FIELDS | named if event.type == "episode_started" else _PLACE_FIELDS
        data = event.model_dump(mode="json", exclude=set(drop))
        hashed.update(b"\n" + json.dumps(data, sort_keys=True, default=str).encode())
    return hashed.hexdigest()


def check_unique(path: Path | str, records: list[Recorded]) -> None:
    """Refuse records of which two share an episode id (one episode would be scored twice,
    and keyed by its id one score would hide the other), or hold the same recording (a file
    copied under another name, a line given twice: ids built from the place differ, the
    episode is one), naming both places."""
    seen: dict[str, Recorded] = {}
    contents: dict[str, Recorded] = {}
    for record in records:
        first = seen.setdefault(record.episode_id, record)
        if first is not record:
            raise ReplaySourceError(
                path,
                None,
                f"episode id {record.episode_id!r} is recorded twice: at {_place(first)} and at "
                f"{_place(record)}; one episode would be scored twice: remove one copy",
            )
        first = contents.setdefault(_fingerprint(record), record)
        if first is not record:
            raise ReplaySourceError(
                path,
                None,
                "the same recording appears twice (identical content): at "
                f"{_place(first)} and at {_place(record)}; one episode would be scored twice: "
                "remove one copy",
            )


def read_source(path: Path | str, fmt: SourceFormat | None = None) -> LoadResult:
    """Every recorded episode at ``path``, and the problems met that did not stop the import.

    A directory that is not a run directory is read file by file, not recursively: its
    ``.jsonl`` files, and its files with a suffix a reader registered (``.eval``, ``.json``)
    that the reader claims (one it does not claim is skipped, and said so). ToolEmu label files
    are skipped, since they are joined to their dumps. A directory holding ``manifest.json``
    but neither ``journal.jsonl`` nor ``trajectories/`` is not a run directory: it is read as
    such a folder, its manifest (and a summary) skipped with a note.

    Two records with the same episode id (from one file or two) are refused, naming both.
    """
    path = Path(path)
    result = _read_source(path, fmt)
    check_unique(path, result.records)
    return result


def read_sources(paths: list[Path] | list[str]) -> LoadResult:
    """:func:`read_source` of each path, together; an episode id recorded in two of them is
    refused as in one."""
    result = LoadResult()
    for path in paths:
        part = read_source(path)
        result.records.extend(part.records)
        result.problems.extend(part.problems)
    check_unique(Path(paths[0]) if paths else Path("."), result.records)
    return result


def _read_source(path: Path, fmt: SourceFormat | None) -> LoadResult:
    if fmt is None and path.is_dir() and not any(r.detect(path) for r in readers()):
        result = LoadResult()
        suffixes = sorted({s for r in readers() for s in r.suffixes} - {".jsonl"})
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix in (".jsonl", *suffixes)
        )
        if not files:
            listed = ", ".join([".jsonl", *suffixes])
            raise ReplaySourceError(path, None, f"no run manifest and no source files ({listed})")
        for file in files:
            if file.suffix != ".jsonl":
                claimed = [r for r in readers() if file.suffix in r.suffixes and r.detect(file)]
                if file.name == MANIFEST and not claimed:
                    result.problems.append(
                        f"{file}: skipped: a run's manifest, but {path} has no {JOURNAL} or "
                        f"{TRAJECTORIES}/ (no recorded episodes of that run), so it is read as a "
                        "folder of sources"
                    )
                    continue
                if file.name in _RUN_FILES and not claimed:
                    result.problems.append(f"{file}: skipped: {_RUN_FILES[file.name]}")
                    continue
                if not claimed:
                    result.problems.append(f"{file}: skipped: not a recognised source")
                    continue
                part = claimed[0].read(file)
                result.records.extend(part.records)
                result.problems.extend(part.problems)
                continue
            first = first_record(file)
            if first is None or any(c.check(first[1]) for c in _companions()):
                continue
            part = read_source(file)
            result.records.extend(part.records)
            result.problems.extend(part.problems)
        return result
    return _reader(fmt or detect_format(path)).read(path)


def load_recorded(path: Path | str, fmt: SourceFormat | None = None) -> list[Recorded]:
    """The records of :func:`read_source`, for callers that do not need its problem list."""
    return read_source(path, fmt).records
