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
from sandbox.results.store import MANIFEST

__all__ = [
    "Companion",
    "Reader",
    "detect_format",
    "load_recorded",
    "read_source",
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


def _unclaimed(path: Path) -> ReplaySourceError:
    """Why no reader claims ``path``."""
    if path.is_dir():
        return ReplaySourceError(path, None, f"a directory but not a run directory (no {MANIFEST})")
    if not path.is_file():
        return ReplaySourceError(path, None, "no such file or directory")
    first = first_record(path)  # raises for a first line that is not JSON
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


def read_source(path: Path | str, fmt: SourceFormat | None = None) -> LoadResult:
    """Every recorded episode at ``path``, and the problems met that did not stop the import.

    A directory that is not a run directory is read file by file, not recursively: its
    ``.jsonl`` files, and its files with a suffix a reader registered (``.eval``, ``.json``)
    that the reader claims (one it does not claim is skipped, and said so). ToolEmu label files
    are skipped, since they are joined to their dumps.
    """
    path = Path(path)
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
