"""A deterministic on-disk cache for tool-emulator and judge LLM calls.

An episode is only reproducible if every model call it made can be answered again without the
model: the answer is looked up by a hash of exactly what determines it (model, messages and the
parameters that change the output). A rerun or replay then costs nothing and gives identical
results, and the cache is plain files so it can be copied, shared between runs and pruned.

Layout: one JSON file per key at ``root / key[:2] / f"{key}.json"``. Files are written to a
temporary name in the same directory and renamed into place, so a reader (or another process
sharing the directory) never sees a torn file; anything unparsable is moved aside and treated
as a miss rather than crashing a long run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = [
    "CACHE_FORMAT_VERSION",
    "STRIPPED_PARAMS",
    "CacheEntry",
    "CacheMiss",
    "CacheReadOnlyError",
    "CacheStats",
    "ResponseCache",
    "cache_key",
    "default_cache_dir",
]

log = logging.getLogger(__name__)

#: Part of every key: bump it when the key derivation or entry format changes, so old entries
#: simply stop matching instead of being misread.
CACHE_FORMAT_VERSION = 1

#: Parameters that affect how a call is made, not what it answers. They are removed before
#: hashing and storing so that, e.g., a longer timeout or another endpoint still hits, and so
#: credentials never reach the disk.
STRIPPED_PARAMS: frozenset[str] = frozenset({"timeout", "num_retries", "api_key", "api_base"})

ENV_VAR = "PROPENSITY_CACHE_DIR"

_SECRET = re.compile(r"sk-[A-Za-z0-9_-]{16,}")
_KEY = re.compile(r"[0-9a-f]{64}")
_ENTRY_SUFFIX = ".json"
_TEMP_SUFFIX = ".tmp"
_CORRUPT_SUFFIX = ".corrupt"
# A temp file older than this was abandoned by a writer that died; prune() clears it.
_STALE_TEMP_S = 3600.0


class CacheMiss(LookupError):
    """Raised offline so a replay fails loudly instead of silently calling a model."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no cached response for key {key} (offline)")
        self.key = key


class CacheReadOnlyError(RuntimeError):
    """Raised by administrative writes (prune) on a cache opened for exact replay."""


class CacheEntry(BaseModel):
    """The stored request next to its answer, so an entry can be audited and re-verified."""

    key: str
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    response: dict[str, Any]
    created_at: float
    hits: int = 0


class CacheStats(BaseModel):
    """What the CLI needs to decide whether and how much to prune."""

    entries: int = 0
    bytes: int = 0
    oldest: float | None = None
    newest: float | None = None
    corrupt: int = 0


def default_cache_dir() -> Path:
    """Lets users point several runs (or a CI job) at one shared cache without flags."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "propensity-sandbox" / "llm"


def _canonical_json(value: Any) -> str:
    # allow_nan=False: NaN/Infinity are not JSON and would make keys depend on the encoder.
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _strip_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if name not in STRIPPED_PARAMS}


def cache_key(model: str, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> str:
    """Hash exactly what determines the answer, so equal requests share one entry.

    ``timeout``, ``num_retries``, ``api_key`` and ``api_base`` are stripped here. Any other
    parameter that does not change the answer must be left out by the caller, or it will split
    the cache. Dict key order never matters; value types do (``0`` and ``0.0`` differ).
    """
    payload = {
        "version": CACHE_FORMAT_VERSION,
        "model": model,
        "messages": messages,
        "params": _strip_params(params),
    }
    return hashlib.sha256(_canonical_json(payload).encode("utf-8")).hexdigest()


def _find_secret(value: Any, where: str) -> str | None:
    """Return where a key-like string sits (never the string itself, which must not be logged)."""
    if isinstance(value, str):
        return where if _SECRET.search(value) else None
    if isinstance(value, Mapping):
        for name, item in value.items():
            found = _find_secret(str(name), where) or _find_secret(item, f"{where}[{name!r}]")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_secret(item, f"{where}[{index}]")
            if found:
                return found
    return None


def _refuse_secrets(params: Mapping[str, Any]) -> None:
    where = _find_secret(dict(params), "params")
    if where is not None:
        raise ValueError(
            f"refusing to cache: {where} contains what looks like an API key (sk-...); "
            "pass credentials as api_key (which is stripped) or via the environment"
        )


def _check_key(key: str) -> None:
    # Keys become file names: anything but a sha256 hex digest could escape the cache root.
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a cache key (expected 64 lowercase hex digits): {key!r}")


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers and other processes must only ever see a complete file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")
    # os.open with 0o666 honours the umask, so a cache shared between users stays readable.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _encode(entry: CacheEntry) -> bytes:
    # Insertion order kept (no sort_keys) so a hit returns the response exactly as first seen.
    text = json.dumps(entry.model_dump(mode="json"), ensure_ascii=False, indent=1)
    return (text + "\n").encode("utf-8")


def _decode(data: bytes, key: str) -> CacheEntry | None:
    """None for anything that is not a valid entry for exactly this key."""
    try:
        entry = CacheEntry.model_validate_json(data)
    except (ValidationError, ValueError):
        return None
    try:
        expected = cache_key(entry.model, entry.messages, entry.params)
    except (TypeError, ValueError):
        return None
    if entry.key != key or expected != key:
        return None
    return entry


class ResponseCache:
    """File-per-key response cache, safe to share between concurrent tasks and processes.

    ``read_only`` is for exact replays that must not grow or alter the cache: nothing is ever
    written (``put`` is a no-op, hit counts are not updated, corrupt files stay in place).
    ``offline`` makes a miss in ``get_or_compute`` raise ``CacheMiss`` instead of calling the
    model; it can also be passed per call.
    """

    def __init__(self, root: Path | str, *, read_only: bool = False, offline: bool = False):
        self.root = Path(root).expanduser()
        self.read_only = read_only
        self.offline = offline
        # One lock per key being computed, with a count of holders/waiters so the dict only
        # holds keys in flight and does not grow with the cache.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def path_for(self, key: str) -> Path:
        _check_key(key)
        return self.root / key[:2] / f"{key}{_ENTRY_SUFFIX}"

    # -- async API (the runtime is async; file I/O goes to a thread) -------------------------

    async def get(self, key: str) -> CacheEntry | None:
        path = self.path_for(key)
        return await asyncio.to_thread(self._read, path, key)

    async def put(self, entry: CacheEntry) -> None:
        """Store an entry; refuses entries that would leak a secret or poison another key."""
        prepared = self._prepare(entry)
        if self.read_only:
            return
        await asyncio.to_thread(_write_atomic, self.path_for(prepared.key), _encode(prepared))

    async def get_or_compute(
        self,
        model: str,
        messages: list[dict[str, Any]],
        params: Mapping[str, Any],
        compute: Callable[[], Awaitable[dict[str, Any]]],
        *,
        offline: bool | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Return ``(response, hit)``; concurrent identical requests call ``compute`` once.

        Secrets are checked before ``compute`` so a refused request never costs a model call,
        and a fresh response is normalised through JSON so a miss returns exactly what a later
        hit will.
        """
        stored_params = _strip_params(params)
        _refuse_secrets(stored_params)
        key = cache_key(model, messages, stored_params)
        is_offline = self.offline if offline is None else offline
        async with self._key_lock(key):
            entry = await self.get(key)
            if entry is not None:
                if not self.read_only:
                    await asyncio.to_thread(self._record_hit, entry)
                return entry.response, True
            if is_offline:
                raise CacheMiss(key)
            response = await compute()
            if not isinstance(response, dict):
                raise TypeError(f"compute() must return a dict, got {type(response).__name__}")
            response = json.loads(json.dumps(response, ensure_ascii=False, allow_nan=False))
            entry = CacheEntry(
                key=key,
                model=model,
                messages=json.loads(json.dumps(messages, ensure_ascii=False)),
                params=stored_params,
                response=response,
                created_at=time.time(),
            )
            await self.put(entry)
            return response, False

    @asynccontextmanager
    async def _key_lock(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    # -- sync helpers (CLI) -------------------------------------------------------------------

    def iter_entries(self) -> Iterator[CacheEntry]:
        """Valid entries in key order; unparsable files are skipped, never moved."""
        for path in self._entry_paths():
            entry = self._load(path)
            if entry is not None:
                yield entry

    def stats(self) -> CacheStats:
        stats = CacheStats()
        for path in self._entry_paths():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            entry = self._load(path)
            if entry is None:
                stats.corrupt += 1
                continue
            stats.entries += 1
            stats.bytes += size
            if stats.oldest is None or entry.created_at < stats.oldest:
                stats.oldest = entry.created_at
            if stats.newest is None or entry.created_at > stats.newest:
                stats.newest = entry.created_at
        return stats

    def prune(self, *, older_than_s: float | None = None, max_bytes: int | None = None) -> int:
        """Remove entries older than ``older_than_s``, then oldest first until within
        ``max_bytes``. Returns how many entries were removed.

        Age is the entry's ``created_at``, not the file's mtime, because copying a cache
        directory resets mtimes. Unparsable entry files count by mtime so they can age out;
        ``*.corrupt`` files are kept for inspection.
        """
        if self.read_only:
            raise CacheReadOnlyError(f"cache at {self.root} is read-only")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        now = time.time()
        self._remove_stale_temps(now)
        candidates: list[tuple[float, str, int, Path]] = []
        for path in self._entry_paths():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            entry = self._load(path)
            created = entry.created_at if entry is not None else stat.st_mtime
            candidates.append((created, path.name, stat.st_size, path))
        candidates.sort()

        removed = 0
        keep: list[tuple[float, str, int, Path]] = []
        cutoff = None if older_than_s is None else now - older_than_s
        for candidate in candidates:
            if cutoff is not None and candidate[0] < cutoff:
                removed += self._unlink(candidate[3])
            else:
                keep.append(candidate)
        if max_bytes is not None:
            total = sum(size for _, _, size, _ in keep)
            for _, _, size, path in keep:
                if total <= max_bytes:
                    break
                removed += self._unlink(path)
                total -= size
        # Empty shard directories are left alone: removing one could race a concurrent writer
        # that has just created it, and there are at most 256 of them.
        return removed

    # -- internals ----------------------------------------------------------------------------

    def _prepare(self, entry: CacheEntry) -> CacheEntry:
        _check_key(entry.key)
        params = _strip_params(entry.params)
        _refuse_secrets(params)
        expected = cache_key(entry.model, entry.messages, params)
        if entry.key != expected:
            raise ValueError(
                f"entry key {entry.key} does not match its model/messages/params ({expected}); "
                "storing it would answer a different request"
            )
        return entry.model_copy(update={"params": params})

    def _read(self, path: Path, key: str) -> CacheEntry | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        entry = _decode(data, key)
        if entry is None:
            self._move_aside(path)
        return entry

    def _load(self, path: Path) -> CacheEntry | None:
        try:
            return _decode(path.read_bytes(), path.name.removesuffix(_ENTRY_SUFFIX))
        except FileNotFoundError:
            return None

    def _move_aside(self, path: Path) -> None:
        log.warning("ignoring corrupt cache entry %s", path)
        if self.read_only:
            return
        try:
            os.replace(path, path.with_name(path.name + _CORRUPT_SUFFIX))
        except FileNotFoundError:
            pass  # another process already moved or replaced it

    def _record_hit(self, entry: CacheEntry) -> None:
        # Best effort: a lost update between processes only undercounts, and a cache on a
        # read-only mount must still serve hits.
        updated = entry.model_copy(update={"hits": entry.hits + 1})
        try:
            _write_atomic(self.path_for(entry.key), _encode(updated))
        except OSError as error:
            log.debug("could not record cache hit for %s: %s", entry.key, error)

    def _entry_paths(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(
            path
            for path in self.root.glob(f"??/*{_ENTRY_SUFFIX}")
            if _KEY.fullmatch(path.name.removesuffix(_ENTRY_SUFFIX))
        )

    @staticmethod
    def _unlink(path: Path) -> int:
        try:
            path.unlink()
        except FileNotFoundError:
            return 0
        return 1

    def _remove_stale_temps(self, now: float) -> None:
        if not self.root.is_dir():
            return
        for temp in self.root.glob(f"??/.*{_TEMP_SUFFIX}"):
            try:
                if now - temp.stat().st_mtime > _STALE_TEMP_S:
                    temp.unlink()
            except FileNotFoundError:
                continue
