"""`propensity cache`, `propensity images build` and `propensity gc`: the response cache,
the container images and the containers left behind."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from sandbox.cli.common import EXIT_OK, CliError


def add_cache_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `cache` to the `propensity` parser's subparsers; returns its parser."""
    cache: argparse.ArgumentParser = subparsers.add_parser(
        "cache", help="the emulator/judge response cache: stats or prune"
    )
    cache.add_argument("action", choices=["stats", "prune"])
    cache.add_argument("--dir", help="cache directory (default: PROPENSITY_CACHE_DIR or ~/.cache)")
    cache.add_argument("--older-than-days", type=float, help="prune: drop entries older than this")
    cache.add_argument("--max-mb", type=float, help="prune: drop oldest entries until under this")
    return cache


def add_images_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `images` to the `propensity` parser's subparsers; returns its parser."""
    images: argparse.ArgumentParser = subparsers.add_parser(
        "images", help="container images for containerized tools"
    )
    images_sub = images.add_subparsers(dest="images_command", required=True)
    build = images_sub.add_parser(
        "build", help="build the images (bootstraps a Debian base when no registry answers)"
    )
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.add_argument("--no-start-engine", action="store_true", help="never start dockerd")
    return images


def add_gc_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `gc` to the `propensity` parser's subparsers; returns its parser."""
    gc: argparse.ArgumentParser = subparsers.add_parser(
        "gc", help="remove sandbox containers left behind (e.g. after a crash)"
    )
    gc.add_argument(
        "--all", action="store_true", help="also remove containers of runs still in progress"
    )
    return gc


def run_cache(args: argparse.Namespace, out: Console, err: Console) -> int:
    from tools.cache import ResponseCache, default_cache_dir

    cache = ResponseCache(Path(args.dir) if args.dir else default_cache_dir())
    if args.action == "prune":
        if args.older_than_days is None and args.max_mb is None:
            raise CliError("prune needs --older-than-days and/or --max-mb")
        removed = cache.prune(
            older_than_s=args.older_than_days * 86400 if args.older_than_days else None,
            max_bytes=int(args.max_mb * (1 << 20)) if args.max_mb else None,
        )
        out.print(f"removed {removed} cached response(s) from {cache.root}", highlight=False)
    stats = cache.stats()
    out.print(
        f"{cache.root}: {stats.entries} response(s), {stats.bytes / (1 << 20):.1f} MiB",
        highlight=False,
    )
    return EXIT_OK


def run_images(args: argparse.Namespace, out: Console, err: Console) -> int:
    from containers import BuildError, ImageBuilder, code_interpreter_spec
    from sandbox.environments import EngineUnavailable, ensure_engine

    try:
        client = ensure_engine(start=not args.no_start_engine)
        tag = ImageBuilder(client, log=lambda text: err.print(text, highlight=False)).ensure(
            code_interpreter_spec(), force=args.force
        )
    except (EngineUnavailable, BuildError) as exc:
        raise CliError(str(exc)) from exc
    out.print(tag, highlight=False)
    return EXIT_OK


def run_gc(args: argparse.Namespace, out: Console, err: Console) -> int:
    from sandbox.environments import EngineUnavailable, collect_garbage, ensure_engine

    try:
        removed = collect_garbage(ensure_engine(start=False), only_orphans=not args.all)
    except EngineUnavailable as exc:
        raise CliError(str(exc)) from exc
    out.print(f"removed {len(removed)} sandbox container(s)", highlight=False)
    return EXIT_OK
