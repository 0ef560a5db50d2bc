"""Size limits on recorded logs read whole (Inspect AI ``.eval`` zips and ``.json`` logs), and
the check of an ``.eval`` zip's members against them before any other reader opens it.

A ``.eval`` log is a zip archive: a few KiB on disk can inflate to gigabytes (a zip bomb), and
Inspect's reader inflates a member whole, trusting the archive. So before ``inspect_ai`` sees a
``.eval`` file, :func:`check_eval_zip` reads its directory and refuses, naming the file and the
member:

* two members with the same name (a zip reader silently takes one of them);
* a member that declares more than :attr:`LogLimits.member` uncompressed bytes, or (above
  :data:`RATIO_FLOOR`) more than :attr:`LogLimits.ratio` times its compressed size;
* declared sizes adding up to more than :attr:`LogLimits.total`.

Declared sizes can lie, so every member is then inflated once as a bounded stream (never more
than the limit in memory, a MiB at a time): inflating past a limit, inflating to another size
than declared, a bad CRC-32 or a stream that ends early or late is refused too. The bytes
``inspect_ai`` then reads are those checked (the same offsets of the same file).

The limits (defaults justified below) can be raised through the environment:
``PROPENSITY_MAX_LOG_BYTES`` (one member, or one ``.json`` log), ``PROPENSITY_MAX_LOG_TOTAL_BYTES``
(all the members of one ``.eval`` log) and ``PROPENSITY_MAX_LOG_RATIO``.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sandbox.replay.sources.common import ReplaySourceError

__all__ = [
    "DEFAULT_MAX_LOG_BYTES",
    "DEFAULT_MAX_LOG_RATIO",
    "DEFAULT_MAX_LOG_TOTAL_BYTES",
    "MAX_LOG_BYTES_ENV",
    "MAX_LOG_RATIO_ENV",
    "MAX_LOG_TOTAL_BYTES_ENV",
    "RATIO_FLOOR",
    "LogLimits",
    "check_eval_zip",
    "read_member",
]

MAX_LOG_BYTES_ENV = "PROPENSITY_MAX_LOG_BYTES"
MAX_LOG_TOTAL_BYTES_ENV = "PROPENSITY_MAX_LOG_TOTAL_BYTES"
MAX_LOG_RATIO_ENV = "PROPENSITY_MAX_LOG_RATIO"
# One sample's transcript (or one .json log): Inspect reads a member whole and validates it
# into objects several times its size, so 256 MiB of JSON is already GiBs of memory; a long
# agent transcript is a few MiB.
DEFAULT_MAX_LOG_BYTES = 256 << 20
# All members of one .eval log: the time to inflate and parse it (about a minute at 1 GiB),
# and several thousand long samples.
DEFAULT_MAX_LOG_TOTAL_BYTES = 1 << 30
# JSON transcripts compress 5-20x under deflate or zstd, repetitive ones up to about 100x;
# a bomb reaches 1000x (deflate's ceiling) and far beyond (zstd). 200 leaves real logs a margin.
DEFAULT_MAX_LOG_RATIO = 200
# Members smaller than this are never refused for their ratio: they cannot hurt.
RATIO_FLOOR = 1 << 20

_CHUNK = 1 << 20
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_STORED, _DEFLATED, _ZSTD = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, 93


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise ReplaySourceError(
            name, None, f"environment variable: {raw!r} is not a positive whole number"
        )
    return value


@dataclass(frozen=True)
class LogLimits:
    """How big a recorded log may be: one member (or ``.json`` log), all members, the ratio."""

    member: int = DEFAULT_MAX_LOG_BYTES
    total: int = DEFAULT_MAX_LOG_TOTAL_BYTES
    ratio: int = DEFAULT_MAX_LOG_RATIO

    @classmethod
    def from_env(cls) -> LogLimits:
        """The defaults, raised (or lowered) by the environment variables; a value that is not
        a positive whole number is an error naming the variable."""
        return cls(
            member=_env_int(MAX_LOG_BYTES_ENV, DEFAULT_MAX_LOG_BYTES),
            total=_env_int(MAX_LOG_TOTAL_BYTES_ENV, DEFAULT_MAX_LOG_TOTAL_BYTES),
            ratio=_env_int(MAX_LOG_RATIO_ENV, DEFAULT_MAX_LOG_RATIO),
        )

    def check_file(self, path: Path) -> None:
        """Refuse a log file (read whole) bigger than the one-member limit."""
        size = path.stat().st_size
        if size > self.member:
            raise ReplaySourceError(
                path,
                None,
                f"{size} bytes, over the limit of {self.member} for a log read whole "
                f"(raise it with {MAX_LOG_BYTES_ENV})",
            )


class _Bounded:
    """The next ``left`` bytes of ``handle``, as a readable stream."""

    def __init__(self, handle: IO[bytes], left: int) -> None:
        self.handle = handle
        self.left = left

    def read(self, size: int = -1) -> bytes:
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.handle.read(size)
        self.left -= len(data)
        return data


def _zip_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [zlib.error, zipfile.BadZipFile, OSError, EOFError]
    try:
        import zstandard
    except ImportError:
        pass
    else:
        errors.append(zstandard.ZstdError)
    return tuple(errors)


def _chunks(handle: IO[bytes], info: zipfile.ZipInfo, cap: int) -> Any:
    """The member's inflated bytes, a MiB at a time, from its raw data in the file; stops once
    more than ``cap`` bytes came out. Raises ValueError for what is not a whole stream."""
    handle.seek(info.header_offset)
    signature, name_length, extra_length = _LOCAL_HEADER.unpack(
        handle.read(_LOCAL_HEADER.size).ljust(_LOCAL_HEADER.size, b"\0")
    )
    if signature != b"PK\x03\x04":
        raise ValueError("no local file header where the directory says it starts")
    handle.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    raw = _Bounded(handle, info.compress_size)
    total = 0
    if info.compress_type == _STORED:
        while chunk := raw.read(_CHUNK):
            yield chunk
    elif info.compress_type == _DEFLATED:
        inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        while not inflate.eof:
            data = inflate.unconsumed_tail or raw.read(_CHUNK)
            if not data:
                raise ValueError("the compressed stream ends early")
            chunk = inflate.decompress(data, _CHUNK)
            total += len(chunk)
            yield chunk
            if total > cap:
                return
        if inflate.unused_data or raw.left:
            raise ValueError("bytes follow the end of the compressed stream")
    elif info.compress_type == _ZSTD:
        try:
            import zstandard
        except ImportError:
            raise ValueError("zstd-compressed, and zstandard is not installed") from None
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw,  # type: ignore[arg-type]  # a readable stream is all it needs
            read_across_frames=True,
        )
        while chunk := reader.read(_CHUNK):
            total += len(chunk)
            yield chunk
            if total > cap:
                return
        if raw.left:
            raise ValueError("bytes follow the end of the compressed stream")
    else:
        raise ValueError(
            f"compression method {info.compress_type} is not one Inspect writes "
            "(stored, deflate, zstd)"
        )


def read_member(path: Path, handle: IO[bytes], info: zipfile.ZipInfo, limits: LogLimits) -> bytes:
    """The member's bytes, inflated within the limits and checked against the directory (size
    and CRC-32); anything else is a :class:`ReplaySourceError` naming the file and member."""
    parts: list[bytes] = []
    for chunk in _inflate(path, handle, info, limits):
        parts.append(chunk)
    return b"".join(parts)


def _inflate(path: Path, handle: IO[bytes], info: zipfile.ZipInfo, limits: LogLimits) -> Any:
    name = info.filename

    def refuse(problem: str) -> ReplaySourceError:
        return ReplaySourceError(path, None, f"member {name!r}: {problem}")

    size, crc = 0, 0
    errors: tuple[type[Exception], ...] = (ValueError, *_zip_errors())
    try:
        for chunk in _chunks(handle, info, limits.member):
            size += len(chunk)
            if size > limits.member:
                raise refuse(
                    f"inflates past the limit of {limits.member} bytes (it declares "
                    f"{info.file_size}; raise the limit with {MAX_LOG_BYTES_ENV})"
                )
            if size > RATIO_FLOOR and size > limits.ratio * max(info.compress_size, 1):
                raise refuse(
                    f"inflates past {limits.ratio} times its compressed size of "
                    f"{info.compress_size} bytes (it declares {info.file_size}): a zip bomb? "
                    f"(raise the ratio with {MAX_LOG_RATIO_ENV})"
                )
            crc = zlib.crc32(chunk, crc)
            yield chunk
    except errors as exc:
        if isinstance(exc, ReplaySourceError):
            raise
        raise refuse(f"cannot be inflated: {exc}") from None
    if size != info.file_size:
        raise refuse(f"declares {info.file_size} bytes but inflates to {size}")
    if crc != info.CRC:
        raise refuse(f"CRC-32 mismatch (declared {info.CRC:08x}, read {crc:08x})")


def check_eval_zip(path: Path, limits: LogLimits) -> list[zipfile.ZipInfo]:
    """The members of the ``.eval`` zip at ``path``, once its directory and every member's
    inflated bytes are within ``limits`` (see the module docstring); else a
    :class:`ReplaySourceError` naming the file and the member."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ReplaySourceError(
            path, None, f"not a readable Inspect log: not a zip archive ({exc})"
        ) from None
    seen: set[str] = set()
    declared = 0
    for info in infos:
        name = info.filename
        if name in seen:
            raise ReplaySourceError(
                path,
                None,
                f"member {name!r} appears twice in the zip: a reader would silently take one "
                "of them; refused",
            )
        seen.add(name)
        if info.file_size > limits.member:
            raise ReplaySourceError(
                path,
                None,
                f"member {name!r} declares {info.file_size} bytes uncompressed, over the limit "
                f"of {limits.member} (raise it with {MAX_LOG_BYTES_ENV})",
            )
        if info.file_size > RATIO_FLOOR and info.file_size > limits.ratio * max(
            info.compress_size, 1
        ):
            raise ReplaySourceError(
                path,
                None,
                f"member {name!r} declares {info.file_size} bytes from {info.compress_size} "
                f"compressed, over {limits.ratio} times: a zip bomb? (raise the ratio with "
                f"{MAX_LOG_RATIO_ENV})",
            )
        declared += info.file_size
    if declared > limits.total:
        raise ReplaySourceError(
            path,
            None,
            f"its members declare {declared} bytes uncompressed in all, over the limit of "
            f"{limits.total} (raise it with {MAX_LOG_TOTAL_BYTES_ENV})",
        )
    # The declared sizes were within the limits: inflate every member to prove it, bounded.
    with path.open("rb") as handle:
        for info in infos:
            if not info.is_dir():
                for _chunk in _inflate(path, handle, info, limits):
                    pass
    return infos
