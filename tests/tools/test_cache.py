from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tools import cache as cache_module
from tools.cache import (
    CacheEntry,
    CacheMiss,
    CacheReadOnlyError,
    ResponseCache,
    cache_key,
    default_cache_dir,
)

MODEL = "openai/gpt-4o-mini"
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You emulate a shell."},
    {"role": "user", "content": "ls /etc — überall"},
]
PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 256, "seed": 7}
FAKE_SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0"


def _entry(
    messages: list[dict[str, Any]] | None = None,
    *,
    created_at: float | None = None,
    response: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> CacheEntry:
    messages = messages if messages is not None else MESSAGES
    params = params if params is not None else PARAMS
    return CacheEntry(
        key=cache_key(MODEL, messages, params),
        model=MODEL,
        messages=messages,
        params=params,
        response=response if response is not None else {"content": "bin etc usr"},
        created_at=time.time() if created_at is None else created_at,
    )


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# -- keys ---------------------------------------------------------------------------------------


def test_key_is_stable_sha256_hex() -> None:
    key = cache_key(MODEL, MESSAGES, PARAMS)
    assert key == cache_key(MODEL, [dict(m) for m in MESSAGES], dict(PARAMS))
    assert len(key) == 64 and all(c in "0123456789abcdef" for c in key)


def test_key_ignores_param_and_message_dict_order() -> None:
    reordered_params = dict(reversed(list(PARAMS.items())))
    reordered_messages = [dict(reversed(list(m.items()))) for m in MESSAGES]
    assert cache_key(MODEL, MESSAGES, PARAMS) == cache_key(MODEL, MESSAGES, reordered_params)
    assert cache_key(MODEL, MESSAGES, PARAMS) == cache_key(MODEL, reordered_messages, PARAMS)


def test_key_ignores_stripped_params() -> None:
    noisy = {
        **PARAMS,
        "timeout": 30,
        "num_retries": 5,
        "api_key": FAKE_SECRET,
        "api_base": "http://127.0.0.1:4000",
    }
    assert cache_key(MODEL, MESSAGES, noisy) == cache_key(MODEL, MESSAGES, PARAMS)


@pytest.mark.parametrize(
    ("model", "messages", "params"),
    [
        ("openai/gpt-4o", MESSAGES, PARAMS),
        (MODEL, [*MESSAGES, {"role": "user", "content": "again"}], PARAMS),
        (MODEL, [MESSAGES[0], {"role": "user", "content": "ls /var"}], PARAMS),
        (MODEL, MESSAGES, {**PARAMS, "temperature": 0.7}),
        (MODEL, MESSAGES, {**PARAMS, "top_p": 0.9}),
        (MODEL, MESSAGES, {}),
    ],
)
def test_key_changes_with_anything_that_changes_the_answer(
    model: str, messages: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    assert cache_key(model, messages, params) != cache_key(MODEL, MESSAGES, PARAMS)


def test_key_includes_format_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache_key(MODEL, MESSAGES, PARAMS)
    monkeypatch.setattr(cache_module, "CACHE_FORMAT_VERSION", cache_module.CACHE_FORMAT_VERSION + 1)
    assert cache_key(MODEL, MESSAGES, PARAMS) != before


# -- get / put ----------------------------------------------------------------------------------


async def test_round_trip(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    entry = _entry(response={"content": "ok", "usage": {"prompt_tokens": 3}})
    await cache.put(entry)
    path = tmp_path / entry.key[:2] / f"{entry.key}.json"
    assert path.is_file()
    assert await cache.get(entry.key) == entry


async def test_get_missing_is_none_and_bad_keys_are_rejected(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    assert await cache.get(cache_key(MODEL, MESSAGES, PARAMS)) is None
    with pytest.raises(ValueError, match="not a cache key"):
        await cache.get("../../etc/passwd")


async def test_put_rejects_entry_whose_key_does_not_match_its_request(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    entry = _entry().model_copy(update={"model": "someone/else"})
    with pytest.raises(ValueError, match="does not match"):
        await cache.put(entry)
    assert _files(tmp_path) == []


# -- get_or_compute -----------------------------------------------------------------------------


async def test_get_or_compute_miss_then_hit(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    calls = 0

    async def compute() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"content": "drwxr-xr-x", "usage": {"total_tokens": 12}, "tags": ("a", "b")}

    first, hit = await cache.get_or_compute(MODEL, MESSAGES, PARAMS, compute)
    assert hit is False
    second, hit = await cache.get_or_compute(MODEL, MESSAGES, {**PARAMS, "timeout": 9}, compute)
    assert hit is True
    assert calls == 1
    # A miss returns exactly what later hits return (tuples normalised to lists, as in JSON).
    assert (
        first
        == second
        == {"content": "drwxr-xr-x", "usage": {"total_tokens": 12}, "tags": ["a", "b"]}
    )

    third, hit = await cache.get_or_compute(MODEL, MESSAGES, PARAMS, compute)
    assert hit is True and third == first
    stored = await cache.get(cache_key(MODEL, MESSAGES, PARAMS))
    assert stored is not None and stored.hits == 2


async def test_concurrent_identical_calls_compute_once(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    calls = 0

    async def compute() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"content": "once"}

    results = await asyncio.gather(
        *(cache.get_or_compute(MODEL, MESSAGES, PARAMS, compute) for _ in range(10))
    )
    assert calls == 1
    assert all(response == {"content": "once"} for response, _ in results)
    assert sorted(hit for _, hit in results) == [False] + [True] * 9
    assert cache._locks == {}


async def test_different_keys_compute_concurrently(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    running = 0
    peak = 0

    async def compute() -> dict[str, Any]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return {"content": "x"}

    await asyncio.gather(
        *(
            cache.get_or_compute(MODEL, [{"role": "user", "content": str(i)}], PARAMS, compute)
            for i in range(5)
        )
    )
    assert peak == 5
    assert cache._locks == {}


async def test_failed_compute_stores_nothing_and_releases_the_lock(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)

    async def boom() -> dict[str, Any]:
        raise RuntimeError("model down")

    with pytest.raises(RuntimeError, match="model down"):
        await cache.get_or_compute(MODEL, MESSAGES, PARAMS, boom)
    assert cache._locks == {}
    assert _files(tmp_path) == []

    async def ok() -> dict[str, Any]:
        return {"content": "back"}

    assert await cache.get_or_compute(MODEL, MESSAGES, PARAMS, ok) == ({"content": "back"}, False)


# -- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"",
        b"\xff\xfe\x00garbage",
        b'{"key": "abc"}',
        b"[]",
    ],
)
async def test_corrupt_file_is_a_miss_and_moved_aside(tmp_path: Path, content: bytes) -> None:
    cache = ResponseCache(tmp_path)
    key = cache_key(MODEL, MESSAGES, PARAMS)
    path = cache.path_for(key)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)

    assert await cache.get(key) is None
    assert not path.exists()
    assert path.with_name(path.name + ".corrupt").read_bytes() == content

    async def compute() -> dict[str, Any]:
        return {"content": "fresh"}

    assert await cache.get_or_compute(MODEL, MESSAGES, PARAMS, compute) == (
        {"content": "fresh"},
        False,
    )
    assert await cache.get_or_compute(MODEL, MESSAGES, PARAMS, compute) == (
        {"content": "fresh"},
        True,
    )


async def test_entry_stored_under_another_key_is_treated_as_corrupt(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    entry = _entry()
    other = cache_key(MODEL, [{"role": "user", "content": "other"}], PARAMS)
    path = cache.path_for(other)
    path.parent.mkdir(parents=True)
    path.write_text(entry.model_dump_json())
    assert await cache.get(other) is None
    assert path.with_name(path.name + ".corrupt").exists()


async def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    entries = [_entry([{"role": "user", "content": str(i)}]) for i in range(20)]
    await asyncio.gather(*(cache.put(e) for e in entries))
    await asyncio.gather(*(cache.put(e) for e in entries))  # overwrite in place
    files = _files(tmp_path)
    assert len(files) == 20
    assert all(p.suffix == ".json" and not p.name.startswith(".") for p in files)
    for path in files:
        json.loads(path.read_text(encoding="utf-8"))


async def test_failed_write_leaves_old_entry_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ResponseCache(tmp_path)
    entry = _entry(response={"content": "old"})
    await cache.put(entry)

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        await cache.put(entry.model_copy(update={"response": {"content": "new"}}))
    monkeypatch.undo()

    assert len(_files(tmp_path)) == 1
    stored = await cache.get(entry.key)
    assert stored is not None and stored.response == {"content": "old"}


# -- stats / prune / iter -----------------------------------------------------------------------


def _put_sync(cache: ResponseCache, entry: CacheEntry) -> None:
    asyncio.run(cache.put(entry))


def test_stats_and_iter_entries(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    assert cache.stats().entries == 0
    assert cache.stats().oldest is None
    now = time.time()
    for i, age in enumerate([300.0, 100.0, 200.0]):
        _put_sync(cache, _entry([{"role": "user", "content": str(i)}], created_at=now - age))
    bad = cache.path_for(cache_key(MODEL, [{"role": "user", "content": "bad"}], PARAMS))
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text("nope")

    stats = cache.stats()
    assert stats.entries == 3
    assert stats.corrupt == 1
    assert stats.bytes == sum(p.stat().st_size for p in _files(tmp_path)) - bad.stat().st_size
    assert stats.oldest == pytest.approx(now - 300.0)
    assert stats.newest == pytest.approx(now - 100.0)
    assert sorted(e.messages[0]["content"] for e in cache.iter_entries()) == ["0", "1", "2"]
    assert bad.exists()  # sync helpers only read


def test_prune_by_age(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    now = time.time()
    for i, age in enumerate([10.0, 5000.0, 20.0, 9000.0]):
        _put_sync(cache, _entry([{"role": "user", "content": str(i)}], created_at=now - age))
    assert cache.prune(older_than_s=3600) == 2
    assert sorted(e.messages[0]["content"] for e in cache.iter_entries()) == ["0", "2"]
    assert cache.prune(older_than_s=3600) == 0


def test_prune_by_size_removes_oldest_first(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    now = time.time()
    for i in range(5):  # "0" is the oldest
        _put_sync(cache, _entry([{"role": "user", "content": str(i)}], created_at=now - 100 + i))
    sizes = {
        e.messages[0]["content"]: cache.path_for(e.key).stat().st_size for e in cache.iter_entries()
    }
    budget = sizes["3"] + sizes["4"]

    assert cache.prune(max_bytes=budget) == 3
    assert sorted(e.messages[0]["content"] for e in cache.iter_entries()) == ["3", "4"]
    assert cache.stats().bytes <= budget
    assert cache.prune(max_bytes=budget) == 0
    assert cache.prune(max_bytes=0) == 2
    assert cache.stats().entries == 0


def test_prune_by_age_and_size(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    now = time.time()
    for i, age in enumerate([9000.0, 30.0, 20.0, 10.0]):
        _put_sync(cache, _entry([{"role": "user", "content": str(i)}], created_at=now - age))
    one = max(p.stat().st_size for p in _files(tmp_path))
    assert cache.prune(older_than_s=3600, max_bytes=2 * one) == 2
    assert sorted(e.messages[0]["content"] for e in cache.iter_entries()) == ["2", "3"]


def test_prune_clears_stale_temp_files_and_validates(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    _put_sync(cache, _entry())
    shard = _files(tmp_path)[0].parent
    stale = shard / ".abandoned.json.deadbeef.tmp"
    fresh = shard / ".inflight.json.cafebabe.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    assert cache.prune() == 0
    assert not stale.exists() and fresh.exists()
    with pytest.raises(ValueError):
        cache.prune(max_bytes=-1)


def test_stats_and_prune_on_missing_root(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "nowhere")
    assert cache.stats().entries == 0
    assert cache.prune(older_than_s=0, max_bytes=0) == 0
    assert list(cache.iter_entries()) == []


# -- read-only / offline ------------------------------------------------------------------------


async def test_read_only_never_writes(tmp_path: Path) -> None:
    writer = ResponseCache(tmp_path)
    await writer.put(_entry())
    before = {p: p.read_bytes() for p in _files(tmp_path)}

    reader = ResponseCache(tmp_path, read_only=True)
    calls = 0

    async def compute() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"content": "live"}

    assert await reader.get_or_compute(MODEL, MESSAGES, PARAMS, compute) == (
        {"content": "bin etc usr"},
        True,
    )
    other = [{"role": "user", "content": "new"}]
    assert await reader.get_or_compute(MODEL, other, PARAMS, compute) == (
        {"content": "live"},
        False,
    )
    assert await reader.get_or_compute(MODEL, other, PARAMS, compute) == (
        {"content": "live"},
        False,
    )
    assert calls == 2
    await reader.put(_entry(other))  # a no-op, not an error

    corrupt = reader.path_for(cache_key(MODEL, [{"role": "user", "content": "bad"}], PARAMS))
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_text("{")
    before[corrupt] = b"{"
    assert await reader.get(corrupt.name.removesuffix(".json")) is None
    with pytest.raises(CacheReadOnlyError):
        reader.prune(max_bytes=0)

    assert {p: p.read_bytes() for p in _files(tmp_path)} == before


async def test_offline_miss_raises_without_calling_the_model(tmp_path: Path) -> None:
    await ResponseCache(tmp_path).put(_entry())
    replay = ResponseCache(tmp_path, read_only=True)

    async def compute() -> dict[str, Any]:
        raise AssertionError("offline replay must not call a model")

    response, hit = await replay.get_or_compute(MODEL, MESSAGES, PARAMS, compute, offline=True)
    assert hit and response == {"content": "bin etc usr"}

    other = [{"role": "user", "content": "never seen"}]
    with pytest.raises(CacheMiss) as caught:
        await replay.get_or_compute(MODEL, other, PARAMS, compute, offline=True)
    assert caught.value.key == cache_key(MODEL, other, PARAMS)
    assert replay._locks == {}

    offline_by_default = ResponseCache(tmp_path, read_only=True, offline=True)
    with pytest.raises(CacheMiss):
        await offline_by_default.get_or_compute(MODEL, other, PARAMS, compute)


# -- secrets ------------------------------------------------------------------------------------


async def test_api_key_param_is_stripped_before_storing(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)

    async def compute() -> dict[str, Any]:
        return {"content": "ok"}

    params = {**PARAMS, "api_key": FAKE_SECRET, "api_base": "http://127.0.0.1:1"}
    await cache.get_or_compute(MODEL, MESSAGES, params, compute)
    await cache.put(_entry(params=params))
    [path] = _files(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert FAKE_SECRET not in text and "api_key" not in text and "api_base" not in text
    stored = await cache.get(path.name.removesuffix(".json"))
    assert stored is not None and stored.params == PARAMS


@pytest.mark.parametrize(
    "params",
    [
        {"extra_headers": {"Authorization": f"Bearer {FAKE_SECRET}"}},
        {"metadata": [{"note": FAKE_SECRET}]},
        {"user": FAKE_SECRET},
    ],
)
async def test_secret_in_params_is_refused_before_calling_the_model(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    cache = ResponseCache(tmp_path)

    async def compute() -> dict[str, Any]:
        raise AssertionError("must refuse before spending a model call")

    with pytest.raises(ValueError, match="API key") as caught:
        await cache.get_or_compute(MODEL, MESSAGES, params, compute)
    assert FAKE_SECRET not in str(caught.value)
    with pytest.raises(ValueError, match="API key"):
        await cache.put(_entry(params=params))
    assert _files(tmp_path) == []


async def test_short_sk_strings_and_messages_are_not_secrets(tmp_path: Path) -> None:
    # Scenarios plant fake credentials in prompts; only params are policed.
    cache = ResponseCache(tmp_path)
    messages = [{"role": "user", "content": f"the leaked key is {FAKE_SECRET}"}]

    async def compute() -> dict[str, Any]:
        return {"content": "noted"}

    result = await cache.get_or_compute(MODEL, messages, {"stop": ["sk-short"]}, compute)
    assert result == ({"content": "noted"}, False)


# -- default location ---------------------------------------------------------------------------


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROPENSITY_CACHE_DIR", str(tmp_path / "shared"))
    assert default_cache_dir() == tmp_path / "shared"
    monkeypatch.delenv("PROPENSITY_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "propensity-sandbox" / "llm"
